# Training and prediction (paper §7.1-7.4, SPEC §8): one T-DNN per (model, regime, fold, repetition,
# task), hyper-parameters chosen on validation from tdnn.grid; each trained model predicts its
# fold's test-role utterances, clean and in every built condition (test pool).  Model tdnn_nr is
# the same T-DNN on features of RNNoise-denoised audio (train and test; rules/denoise.smk); the
# regimes include the augmentation-fraction sweep (fraction-<p>, training.sweep).  Regimes and input
# functions: rules/common.smk (TRAIN_REGIMES).  Code: sernoise.training, sernoise.models.tdnn.

from dataclasses import asdict


rule train_tdnn:
    input:
        unpack(train_inputs),
    output:
        model="results/{corpus}/models/{model}/{regime}/fold{fold}/rep{rep}/{task}/model.pt",
        hparams="results/{corpus}/models/{model}/{regime}/fold{fold}/rep{rep}/{task}/hparams.yaml",
        norm="results/{corpus}/models/{model}/{regime}/fold{fold}/rep{rep}/{task}/norm.npz",
        curve="results/{corpus}/models/{model}/{regime}/fold{fold}/rep{rep}/{task}/curve.csv",
        curve_png="results/{corpus}/models/{model}/{regime}/fold{fold}/rep{rep}/{task}/curve.png",
        selection="results/{corpus}/models/{model}/{regime}/fold{fold}/rep{rep}/{task}/selection.csv",
        versions="results/{corpus}/models/{model}/{regime}/fold{fold}/rep{rep}/{task}/versions.yaml",
    wildcard_constraints:
        model="|".join(TDNN_MODELS) or "(?!)",  # tdnn, tdnn_nr (denoised features: model_variant)
        regime=TRAIN_WILDCARDS["regime"],
        fold=TRAIN_WILDCARDS["fold"],
        rep=TRAIN_WILDCARDS["rep"],
        task=TRAIN_WILDCARDS["task"],
    params:
        regime=lambda wc: asdict(training_regime(wc)),
        conditions=lambda wc: list(training_regime(wc).train_conditions),
        seed=config["seed"],
        augmented_per_clean=config["training"]["augmented_per_clean"],
        device=config["training"]["device"],
        tdnn=config["tdnn"],
    threads: config["training"]["threads"]
    resources:
        mem_mb=6000,
        runtime=480,
        gpu=TRAIN_GPU,
    conda:
        "../envs/torch.yaml"
    log:
        "logs/{corpus}/train/{model}/{regime}/fold{fold}/rep{rep}/{task}.log",
    benchmark:
        "benchmarks/snakemake/{corpus}/train/{model}/{regime}/fold{fold}/rep{rep}/{task}.tsv"
    script:
        "../workflow/scripts/train_tdnn.py"


rule predict_tdnn:
    input:
        unpack(predict_inputs),
    output:
        "results/{corpus}/predictions/{model}/{regime}/fold{fold}/rep{rep}/{task}.csv",
    wildcard_constraints:
        model="|".join(TDNN_MODELS) or "(?!)",  # tdnn, tdnn_nr (denoised features: model_variant)
        regime=TRAIN_WILDCARDS["regime"],
        fold=TRAIN_WILDCARDS["fold"],
        rep=TRAIN_WILDCARDS["rep"],
        task=TRAIN_WILDCARDS["task"],
    params:
        conditions=test_conditions(),
        device=config["training"]["device"],
    threads: 1
    resources:
        mem_mb=3000,
        runtime=60,
        gpu=TRAIN_GPU,
    conda:
        "../envs/torch.yaml"
    log:
        "logs/{corpus}/predict/{model}/{regime}/fold{fold}/rep{rep}/{task}.log",
    benchmark:
        "benchmarks/snakemake/{corpus}/predict/{model}/{regime}/fold{fold}/rep{rep}/{task}.tsv"
    script:
        "../workflow/scripts/predict_tdnn.py"

# E-DNN training and prediction (paper §7.3; E-DNN-NR §7.4.2; SPEC §7-8): wav2vec2 (SpeechBrain's
# Hugging Face wrapper) + mean pooling + dense layers, fine-tuned per (model, regime, fold,
# repetition, task) on the same examples as the T-DNN, read as audio from the clean corpus and the
# regime's TRAIN-pool datasets; each model predicts its fold's test-role utterances, clean and in
# every built condition (TEST pool), in the T-DNN's predictions format, so the evaluation rules
# read both families alike.  Backbones: rules/pretrained.smk.  Code: sernoise.training.ednn,
# sernoise.models.ednn.
# Helpers and input functions: rules/common_ednn.smk.

from dataclasses import asdict


rule train_ednn:
    input:
        unpack(ednn_train_inputs),
    output:
        model="results/{corpus}/models/{model}/{regime}/fold{fold}/rep{rep}/{task}/model.pt",
        hparams="results/{corpus}/models/{model}/{regime}/fold{fold}/rep{rep}/{task}/hparams.yaml",
        curve="results/{corpus}/models/{model}/{regime}/fold{fold}/rep{rep}/{task}/curve.csv",
        curve_png="results/{corpus}/models/{model}/{regime}/fold{fold}/rep{rep}/{task}/curve.png",
        selection="results/{corpus}/models/{model}/{regime}/fold{fold}/rep{rep}/{task}/selection.csv",
        versions="results/{corpus}/models/{model}/{regime}/fold{fold}/rep{rep}/{task}/versions.yaml",
    wildcard_constraints:
        model=EDNN_MODELS,
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
        ednn=config["ednn"],
        backbone=lambda wc: backbone(wc.model).as_dict(),
        save_path=f"{PRETRAINED_ROOT}/hf_cache",
    threads: config["training"]["threads"]
    resources:
        mem_mb=config["ednn"]["mem_mb"],
        runtime=config["ednn"]["runtime"],
        gpu=TRAIN_GPU,
    conda:
        "../envs/torch.yaml"
    log:
        "logs/{corpus}/train/{model}/{regime}/fold{fold}/rep{rep}/{task}.log",
    benchmark:
        "benchmarks/snakemake/{corpus}/train/{model}/{regime}/fold{fold}/rep{rep}/{task}.tsv"
    script:
        "../workflow/scripts/train_ednn.py"


rule predict_ednn:
    input:
        unpack(ednn_predict_inputs),
    output:
        "results/{corpus}/predictions/{model}/{regime}/fold{fold}/rep{rep}/{task}.csv",
    wildcard_constraints:
        model=EDNN_MODELS,
        regime=TRAIN_WILDCARDS["regime"],
        fold=TRAIN_WILDCARDS["fold"],
        rep=TRAIN_WILDCARDS["rep"],
        task=TRAIN_WILDCARDS["task"],
    params:
        conditions=test_conditions(),
        device=config["training"]["device"],
        ednn=config["ednn"],
        save_path=f"{PRETRAINED_ROOT}/hf_cache",
    threads: config["training"]["threads"]
    resources:
        mem_mb=config["ednn"]["mem_mb"],
        runtime=60,
        gpu=TRAIN_GPU,
    conda:
        "../envs/torch.yaml"
    log:
        "logs/{corpus}/predict/{model}/{regime}/fold{fold}/rep{rep}/{task}.log",
    benchmark:
        "benchmarks/snakemake/{corpus}/predict/{model}/{regime}/fold{fold}/rep{rep}/{task}.tsv"
    script:
        "../workflow/scripts/predict_ednn.py"

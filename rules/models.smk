# Models (paper §7.1-7.4, SPEC §7-8): one training per (model, regime, fold, repetition, task),
# hyper-parameters chosen on validation; each trained model predicts its fold's test-role
# utterances, clean and in every built condition (TEST pool), into a predictions file that carries
# its keys. One training job per (model, regime, fold, repetition) trains every task, one prediction
# job per (model, regime, fold) scores every repetition and task (sernoise.job_views).
# Which code trains and predicts a model is its family's entry in sernoise.model_registry
# (T-DNN: sernoise.training.tdnn_job, E-DNN: sernoise.training.ednn_job); a family reads filterbank
# features (train_model / predict_model; the T-DNN-NR those of RNNoise-denoised audio) or the
# waveform (train_audio_model / predict_audio_model: the same rules with audio inputs and the
# pretrained backbone). Regimes and input functions: rules/common.smk (sernoise.plan).


rule list_datasets:
    """The condition datasets a model job reads (sernoise.job_views): one small file as the model jobs'
    input instead of a file per dataset (rules/common.smk, _examples); rewritten, and so newer than
    the models, whenever one of its datasets is rebuilt."""
    input:
        datasets=listed_datasets,
    output:
        "results/{corpus}/datasets/{source}/{listing}.json",
    log:
        "logs/{corpus}/datasets/{source}/{listing}.log",
    wildcard_constraints:
        source=_alternatives(DATASET_SOURCES),
        listing=f"test|train-({MODEL_WILDCARDS['regime']})",
    localrule: True
    conda:
        "../envs/snakemake.yaml"
    params:
        conditions=listed_conditions,
        key=lambda wc: "indexes" if wc.source == "waveform" else "conditions",
    script:
        "../workflow/scripts/list_datasets.py"


rule train_model:
    input:
        unpack(train_inputs),
    output:
        model_outputs("features"),
    log:
        "logs/{corpus}/train/{model}/{regime}/fold{fold}/rep{rep}.log",
    benchmark:
        "benchmarks/snakemake/{corpus}/train/{model}/{regime}/fold{fold}/rep{rep}.tsv"
    wildcard_constraints:
        model=MODEL_WILDCARDS["features_model"],
        regime=MODEL_WILDCARDS["regime"],
    conda:
        "../envs/torch.yaml"
    threads: config["training"]["threads"]
    resources:
        mem_mb=model_resource("train", "mem_mb", 6000),
        runtime=training_runtime,
        gpu=TRAIN_GPU,
    params:
        runs=training_runs,
        regime=lambda wc: training_regime(wc).as_dict(),
        conditions=training_conditions,
        seed=config["seed"],
        augmented_per_clean=config["training"]["augmented_per_clean"],
        device=config["training"]["device"],
        settings=lambda wc: config[PLAN.family(wc.model).settings],
        backbone=lambda wc: PLAN.backbones[wc.model].as_dict() if wc.model in PLAN.backbones else None,
        save_path=f"{PRETRAINED_ROOT}/hf_cache",
        # read by the job from the config; as params, a change of them retrains (Snakemake's params trigger)
        training_options={
            key: config["training"][key] for key in ("strategy", "min_epochs", "on_degenerate", "degenerate_alpha")
        },
        task_definitions={task: (config.get("tasks") or {}).get(task) for task in PLAN.tasks},
    script:
        "../workflow/scripts/train_model.py"


use rule train_model as train_audio_model with:
    output:
        model_outputs("waveform"),
    wildcard_constraints:
        model=MODEL_WILDCARDS["waveform_model"],
        regime=MODEL_WILDCARDS["regime"],


rule predict_model:
    input:
        unpack(predict_inputs),
    output:
        prediction_outputs(),
    log:
        "logs/{corpus}/predict/{model}/{regime}/fold{fold}.log",
    benchmark:
        "benchmarks/snakemake/{corpus}/predict/{model}/{regime}/fold{fold}.tsv"
    wildcard_constraints:
        model=MODEL_WILDCARDS["features_model"],
        regime=MODEL_WILDCARDS["regime"],
    group:
        "predict"
    conda:
        "../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=model_resource("predict", "mem_mb", 3000),
        runtime=prediction_runtime,
        gpu=TRAIN_GPU,
    params:
        runs=prediction_runs,
        conditions=PLAN.tested,
        device=config["training"]["device"],
        settings=lambda wc: config[PLAN.family(wc.model).settings],
        save_path=f"{PRETRAINED_ROOT}/hf_cache",
    script:
        "../workflow/scripts/predict_model.py"


use rule predict_model as predict_audio_model with:
    wildcard_constraints:
        model=MODEL_WILDCARDS["waveform_model"],
        regime=MODEL_WILDCARDS["regime"],
    threads: config["training"]["threads"]

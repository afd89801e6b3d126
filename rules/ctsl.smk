# Contrastive teacher-student adaptation to a target noise (Leem et al.; config `ctsl`, README
# "CTSL"): per (model, strategy, fold, repetition, task) the clean-regime model (the teacher,
# frozen) is copied and retrained on the fold's training set mixed with the target noise, then its
# three best non-consecutive development epochs score groups of the test set, clean and at each test
# SNR; the table compares the strategies with one-tailed Welch tests. Code: sernoise.ctsl; input
# functions in rules/common.smk.

from sernoise.ctsl.plan import build_ctsl_plan  # noqa: E402

try:
    CTSL = build_ctsl_plan(config, PLAN)
except PlanError as error:
    raise WorkflowError(str(error)) from None

CTSL_TARGETS = CTSL.targets(CORPUS)


rule ctsl_adapt:
    input:
        unpack(ctsl_teacher),
        manifest="results/{corpus}/manifest.csv",
        folds="results/{corpus}/folds.csv",
        index="results/{corpus}/audio/index.csv",  # stands for its shards (rules/common.smk, _examples)
        banks=PLAN.noise_targets(),
        bank_audio=[f"results/noise/{bank}/audio.h5" for bank in NOISE_BANKS],
    output:
        scores="results/{corpus}/ctsl/{model}/{strategy}/fold{fold}/rep{rep}/{task}/scores.csv",
        embeddings="results/{corpus}/ctsl/{model}/{strategy}/fold{fold}/rep{rep}/{task}/embeddings.csv",
        curve="results/{corpus}/ctsl/{model}/{strategy}/fold{fold}/rep{rep}/{task}/curve.csv",
        record="results/{corpus}/ctsl/{model}/{strategy}/fold{fold}/rep{rep}/{task}/record.yaml",
    log:
        "logs/{corpus}/ctsl/{model}/{strategy}/fold{fold}/rep{rep}/{task}.log",
    benchmark:
        "benchmarks/snakemake/{corpus}/ctsl/{model}/{strategy}/fold{fold}/rep{rep}/{task}.tsv"
    wildcard_constraints:
        model=_alternatives(CTSL.models),
        strategy=_alternatives(CTSL.strategies),
        task=_alternatives(CTSL.tasks),
    conda:
        "../envs/torch.yaml"
    threads: config["ctsl"]["threads"]
    resources:
        mem_mb=model_resource("train", "mem_mb", 4000),
        runtime=model_resource("train", "runtime", 240),
    params:
        ctsl=config["ctsl"],
        settings=lambda wc: config[PLAN.family(wc.model).settings],
        seed=config["seed"],
        banks=NOISE_BANKS,
        snr_reference=config["snr"]["reference"],
        task_definition=lambda wc: (config.get("tasks") or {}).get(wc.task),
        save_path=f"{PRETRAINED_ROOT}/hf_cache",
    script:
        "../workflow/scripts/ctsl_adapt.py"


rule ctsl_table:
    input:
        scores=lambda wc: CTSL.run_files(wc.corpus, "scores.csv"),
        embeddings=lambda wc: CTSL.run_files(wc.corpus, "embeddings.csv"),
    output:
        csv="results/{corpus}/tables/ctsl.csv",
        md="results/{corpus}/tables/ctsl.md",
        tex="results/{corpus}/tables/ctsl.tex",
        embeddings_csv="results/{corpus}/tables/ctsl_embeddings.csv",
        embeddings_md="results/{corpus}/tables/ctsl_embeddings.md",
    log:
        "logs/{corpus}/ctsl/table.log",
    conda:
        "../envs/stats.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        strategies=CTSL.strategies,
        snr_db=config["ctsl"]["target"]["snr_db"],
        model_labels=PLAN.model_labels(),
        title="CTSL (Leem et al.)",
        # after the note on the values (CCC or UAR), which the table writes from the scores
        notes=lambda wc: [
            f"Target noise: {config['ctsl']['target']['category']} noise of the noise banks ({', '.join(NOISE_BANKS)}), "
            f"at most {config['ctsl']['target']['max_minutes']:g} min of the TRAIN pool, mixed at "
            f"{config['ctsl']['target']['snr_db']:g} dB SNR afresh every epoch; test sets: the TEST pool of that "
            f"category at {', '.join(f'{s:g}' for s in config['ctsl']['test_snrs'])} dB, and clean.",
            "Marks: * better than Original, † than RH, ‡ than RM (one-tailed Welch t-test, p <= 0.05, no "
            "correction for multiple comparisons, as in the paper). Bold: best of a column per model.",
            # the stand-in sentence of each adapted model on a stand-in backbone (not of the others)
            *[
                note
                for note in PLAN.stand_in_notes()
                if any(note.startswith(f"{PLAN.label(m)}:") for m in CTSL.models)
            ],
        ],
    script:
        "../workflow/scripts/ctsl_table.py"

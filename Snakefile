# sernoise: how noise changes speech emotion recognition, for people and for models.
# Entry point: config + schema validation and the plan (rules/common.smk, sernoise.plan), one .smk
# per stage.

from snakemake.utils import min_version

min_version("9.0")


configfile: "config.yaml"


report: "report/workflow.rst"


include: "rules/common.smk"
include: "rules/corpus.smk"
include: "rules/align.smk"
include: "rules/noise.smk"
include: "rules/augment.smk"
include: "rules/denoise.smk"
include: "rules/perception.smk"
include: "rules/features.smk"
include: "rules/models.smk"
include: "rules/pretrained.smk"
include: "rules/evaluate.smk"
include: "rules/attack.smk"
include: "rules/metricaug.smk"
include: "rules/ctsl.smk"
include: "rules/latif.smk"


localrules:
    all,
    download_corpus,
    download_noise_bank,


rule all:
    default_target: True
    input:
        PLAN.all_targets(),
        METRICAUG_TARGETS,
        CTSL_TARGETS,
        LATIF_TARGETS,

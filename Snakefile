# sernoise: how noise changes speech emotion recognition, for people and for models.
# Entry point: config + schema validation (rules/common.smk), one .smk per stage.

from snakemake.utils import min_version

min_version("9.0")


configfile: "config.yaml"


report: "report/workflow.rst"


include: "rules/common.smk"
include: "rules/common_ednn.smk"
include: "rules/corpus.smk"
include: "rules/noise.smk"
include: "rules/augment.smk"
include: "rules/denoise.smk"
include: "rules/perception.smk"
include: "rules/features.smk"
include: "rules/train.smk"
include: "rules/pretrained.smk"
include: "rules/ednn.smk"
include: "rules/evaluate.smk"
include: "rules/attack.smk"


localrules:
    all,
    download_corpus,
    download_noise_bank,


rule all:
    input:
        all_targets(),
    default_target: True

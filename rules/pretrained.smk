# Pre-trained wav2vec2 weights of the E-DNN (paper §7.3: wav2vec2-base, pre-trained and not
# ASR-fine-tuned; §7.4.2: wav2vec2-large-robust for E-DNN-NR; SPEC §7).  Config `pretrained:`.
# fetch_pretrained downloads a Hugging Face model into resources/pretrained/<owner>--<name>/ (local
# rule: needs internet); make_tiny_wav2vec2 writes the tiny random stand-in used when
# `pretrained.missing: tiny_random` and the weights are not there.  Everything else loads from the
# folder only.  Code: sernoise.pretrained.
# Which backbones: the plan (sernoise.plan, model registry `pretrained` keys).


rule fetch_pretrained:
    output:
        f"{PRETRAINED_ROOT}/{{pretrained}}/{READY}",
    log:
        "logs/pretrained/fetch_pretrained-{pretrained}.log",
    wildcard_constraints:
        pretrained="|".join(re.escape(name) for name in sorted(PLAN.hub_repos)) or "(?!)",
    localrule: True
    conda:
        "../envs/torch.yaml"
    params:
        repo_id=lambda wc: PLAN.hub_repos[wc.pretrained][1],
        revision=lambda wc: PLAN.hub_repos[wc.pretrained][2],
    script:
        "../workflow/scripts/fetch_pretrained.py"


rule make_tiny_wav2vec2:
    output:
        f"{PRETRAINED_ROOT}/{TINY_NAME}/{READY}",
    log:
        "logs/pretrained/make_tiny_wav2vec2.log",
    conda:
        "../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        seed=config["seed"],
    script:
        "../workflow/scripts/make_tiny_wav2vec2.py"


rule pretrained:
    """Download every configured pre-trained model (e.g. on a login node, before a cluster run)."""
    input:
        [f"{PRETRAINED_ROOT}/{name}/{READY}" for name in sorted(PLAN.hub_repos)],
    localrule: True

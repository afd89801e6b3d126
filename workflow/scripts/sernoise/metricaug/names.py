"""Names of the MetricAug stage that the Snakefile needs (standard library only: the Snakemake
process imports this module, not the audio and model libraries of the jobs)."""

from __future__ import annotations

SETS = ("superset", "fixed", "test", "unseen")
BASELINES = ("none", "fixed", "copypaste")
CLEAN_SET = "clean"


def methods(section: dict) -> list[str]:
    """Every method of the config's ``metricaug`` section, baselines first."""
    return list(BASELINES) + [f"metricaug-{m}-{q}" for m in section["metrics"] for q in section["level_methods"]]


def table_columns(section: dict) -> list[str]:
    """The columns of the table: clean, noise at each test SNR (categories pooled), unseen noise."""
    return [CLEAN_SET] + [f"noise-{float(s):g}dB" for s in section["test_snr_db"]] + ["unseen"]


def config_problems(section: dict, bank_categories) -> list[str]:
    """What is wrong with the ``metricaug`` section beyond its schema (names the keys)."""
    problems = []
    categories, unseen = list(section["categories"]), section["unseen_category"]
    unknown = [c for c in categories + [unseen] if c not in bank_categories]
    if unknown:
        problems.append(f"metricaug.categories / unseen_category: {unknown} not among noise.categories {list(bank_categories)}")
    if unseen in categories:
        problems.append(f"metricaug.unseen_category: {unseen!r} is held out of training, so it cannot be in "
                        "metricaug.categories")
    low, high, step = section["superset"]["snr_db"]
    if not (step > 0 and high >= low):
        problems.append(f"metricaug.superset.snr_db: need [low, high, step] with low <= high and step > 0, "
                        f"got {section['superset']['snr_db']}")
    if any(h % 2 for h in section["hidden"]):
        problems.append(f"metricaug.hidden: every H must be even (two attention heads), got {section['hidden']}")
    from sernoise.metricaug.models import model_problems  # standard library only at import

    problems += model_problems(section.get("model", "metricaug_head"))
    return problems

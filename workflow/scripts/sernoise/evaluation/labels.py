"""Display labels and display orders of the evaluation outputs (Tables 3–5, the sweep, the plots).

One place for every text a reader sees for a model, task, regime column, environmental category
or signal distortion, so that a table, its caption and the plots never disagree.  The names here
are labels only: what a column *means* (its source regime) is :func:`sernoise.regimes.column_source`.

Model labels and which models are noise-robust arms come from the model registry
(:mod:`sernoise.model_registry`); :func:`model_label` is the one function every caller asks.
"""

from __future__ import annotations

from sernoise.model_registry import RegistryError, get_model, registered_models

# Table 3's regime columns, in the paper's order, and their headings.
COLUMNS = ("clean", "mismatch", "match")
COLUMN_LABELS = {"clean": "Clean", "mismatch": "Clean+Noise Mismatch", "match": "Clean+Noise Match"}
TASK_LABELS = {"activation": "A", "valence": "V", "dominance": "D"}
CATEGORY_LABELS = {"nat": "Nature", "int": "Interior", "hum": "Human"}
CATEGORY_ORDER = ("nat", "int", "hum")
DISTORTION_LABELS = {
    "speed-seg": "Speed segment",
    "fade-in": "Fade in",
    "fade-out": "Fade out",
    "drop-word": "Drop word",
    "drop-letters": "Drop letters",
    "reverb": "Reverb",
}
SECTION_ENV = "Environmental category"
SECTION_DIST = "Signal distortion"


def model_label(model: str, overrides: dict | None = None) -> str:
    """A model's column label: ``overrides[model]`` when given and not empty (e.g. the label of an
    E-DNN on a stand-in backbone, or of a plugin's family, which this process may not have
    imported), else its registry entry's, else the model name itself."""
    if (overrides or {}).get(model):
        return overrides[model]
    try:
        return get_model(model).label
    except RegistryError:
        return model


def noise_robust_models() -> tuple[str, ...]:
    """The noise-robust arms (paper §7.4), in registration order: their columns are Table 4's, not Table 3's."""
    return tuple(name for name, family in registered_models().items() if family.noise_robust)


def task_label(task: str) -> str:
    return TASK_LABELS.get(task, task)


def condition_label(cid: str) -> str:
    return DISTORTION_LABELS.get(cid, cid)


def ordered_categories(seen) -> list:
    """The environmental categories of ``seen`` in display order: CATEGORY_ORDER first, then the
    others (configured extra categories) in the order they were seen."""
    seen = list(dict.fromkeys(seen))
    return [k for k in CATEGORY_ORDER if k in seen] + [k for k in seen if k not in CATEGORY_ORDER]


def labels_and_notes(models, model_labels: dict | None, model_notes: list[str] | None) -> tuple[dict, list[str]]:
    """The model column labels given (model -> label; empty ones dropped) and the caption notes that
    belong to a labelled model among ``models`` (a note belongs to the model whose label it starts with)."""
    labels = {m: text for m, text in (model_labels or {}).items() if text}
    notes = [n for n in (model_notes or []) if any(n.startswith(labels[m]) for m in models if m in labels)]
    return labels, notes

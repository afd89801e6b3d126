"""Saving, loading and running a trained T-DNN; the predictions file format.

A model folder (results/{corpus}/models/tdnn/{regime}/fold{k}/rep{r}/{task}/) holds
``model.pt`` (the state_dict only, loaded with ``torch.load(weights_only=True)``: no pickled
code is ever executed), ``hparams.yaml`` (the selected grid point under ``hparams``) and
``norm.npz`` (the training z-normalisation statistics).

Predictions (one CSV per model), consumed by the metrics and tables code::

    condition  "clean" for clean speech, else the condition id
    utt_id
    true       low | mid | high
    predicted  low | mid | high   (argmax of the scores)
    score_low, score_mid, score_high   softmax scores
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml

from sernoise.models.tdnn import TDNN, TDNNConfig
from sernoise.training.data import LABELS, load_norm, normalise
from sernoise.training.loop import predict_proba

PREDICTION_COLUMNS = ["condition", "utt_id", "true", "predicted", "score_low", "score_mid", "score_high"]


class ModelFileError(ValueError):
    """A model folder is incomplete or its files do not fit together."""


def save_state(model_or_state, path) -> None:
    """Save a state_dict (tensors only) with torch.save."""
    state = model_or_state.state_dict() if isinstance(model_or_state, torch.nn.Module) else model_or_state
    torch.save({k: v.detach().cpu() for k, v in state.items()}, path)


def load_model(model_pt, hparams_yaml, device="cpu") -> TDNN:
    """The T-DNN of ``hparams.yaml`` with the weights of ``model.pt`` (weights_only=True), in eval mode."""
    hparams = yaml.safe_load(Path(hparams_yaml).read_text(encoding="utf-8"))
    if not isinstance(hparams, dict) or "hparams" not in hparams:
        raise ModelFileError(f"{hparams_yaml}: no 'hparams' entry")
    model = TDNN(TDNNConfig.from_dict(hparams["hparams"]))
    state = torch.load(model_pt, map_location="cpu", weights_only=True)
    try:
        model.load_state_dict(state)
    except RuntimeError as error:
        raise ModelFileError(f"{model_pt}: weights do not fit the hyper-parameters of {hparams_yaml}: {error}") from None
    return model.to(device).eval()


def predictions_frame(condition: str, utt_ids, true, scores: np.ndarray) -> pd.DataFrame:
    """Rows of the predictions file for one condition (``true``: class indices)."""
    scores = np.asarray(scores, dtype=np.float64).reshape(-1, len(LABELS))
    names = np.asarray(LABELS)
    return pd.DataFrame({
        "condition": condition,
        "utt_id": list(utt_ids),
        "true": names[np.asarray(true, dtype=np.int64)] if len(scores) else [],
        "predicted": names[scores.argmax(axis=1)] if len(scores) else [],
        "score_low": scores[:, 0],
        "score_mid": scores[:, 1],
        "score_high": scores[:, 2],
    }, columns=PREDICTION_COLUMNS)


def predict_features(model: TDNN, features: list[np.ndarray], norm_npz, *, batch_size: int = 64, device="cpu") -> np.ndarray:
    """Softmax scores (n, 3) for raw (un-normalised) feature sequences, normalised with the model's statistics."""
    mean, std = load_norm(norm_npz)
    return predict_proba(model, normalise(features, mean, std), batch_size=batch_size, device=device)


def write_predictions(frames: list[pd.DataFrame], path) -> pd.DataFrame:
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=PREDICTION_COLUMNS)
    table = table[PREDICTION_COLUMNS]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    table.to_csv(tmp, index=False, lineterminator="\n", float_format="%.6f")
    tmp.replace(path)
    return table


def read_predictions(path) -> pd.DataFrame:
    frame = pd.read_csv(path, dtype={"condition": str, "utt_id": str, "true": str, "predicted": str},
                        keep_default_na=False)
    missing = [c for c in PREDICTION_COLUMNS if c not in frame.columns]
    if missing:
        raise ModelFileError(f"{path}: missing column(s) {missing}")
    return frame

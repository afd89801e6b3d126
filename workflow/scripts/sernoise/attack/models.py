"""Black-box access to a trained model: ``predictor(batch of 16 kHz audio arrays) -> class indices``.

The attack only sees predicted labels (paper §7.5).  A predictor is built from a model folder
(``results/{corpus}/models/{model}/{regime}/fold{k}/rep{r}/{task}/``) by the entry of
:data:`PREDICTORS` for the model family; a new family (E-DNN, T-DNN-NR, ...) registers a
callable ``(folder, device) -> predictor`` there (and, if its folder holds other files, in
:data:`MODEL_FILES`).

Every predictor counts its calls and samples and times its parts (``seconds``), so that the
benchmark can say how much of the attack is spent in the model.
"""

from __future__ import annotations

import importlib
import time
from pathlib import Path
from typing import Sequence

import numpy as np

# model family -> "module:callable" building a predictor from (model folder, device)
PREDICTORS = {
    "tdnn": "sernoise.attack.models:TdnnPredictor.from_folder",
    "tdnn_nr": "sernoise.attack.models:TdnnNrPredictor.from_folder",
}
# model family -> files of its model folder the predictor reads (the rule's inputs)
MODEL_FILES = {"tdnn": ("model.pt", "hparams.yaml", "norm.npz"), "tdnn_nr": ("model.pt", "hparams.yaml", "norm.npz")}


class TdnnPredictor:
    """The T-DNN of paper §7.2 on raw audio: log Mel filterbanks (stored precision: float16),
    z-normalised with the model's training statistics (norm.npz), argmax of the scores.

    This is the path of the stored features (``extract_features`` + ``predict_tdnn``), so the
    label of a clean utterance equals the one in the predictions file.
    """

    def __init__(self, model_pt, hparams_yaml, norm_npz, *, device: str = "cpu", batch_size: int = 64):
        from sernoise.training.data import load_norm
        from sernoise.training.predict import load_model

        self.model = load_model(model_pt, hparams_yaml, device=device)
        self.mean, self.std = load_norm(norm_npz)
        self.device, self.batch_size = device, int(batch_size)
        self.calls = 0
        self.samples = 0
        self.seconds = {"features": 0.0, "model": 0.0}

    @classmethod
    def from_folder(cls, folder, device: str = "cpu") -> "TdnnPredictor":
        folder = Path(folder)
        return cls(folder / "model.pt", folder / "hparams.yaml", folder / "norm.npz", device=device)

    def features(self, audio: np.ndarray) -> np.ndarray:
        from sernoise.features import log_mel_fbank

        feats = log_mel_fbank(np.asarray(audio, dtype=np.float32)).astype(np.float16)
        return (feats.astype(np.float32) - self.mean) / self.std

    def scores(self, batch: Sequence[np.ndarray]) -> np.ndarray:
        from sernoise.training.loop import predict_proba

        tick = time.perf_counter()
        feats = [self.features(a) for a in batch]
        tock = time.perf_counter()
        scores = predict_proba(self.model, feats, batch_size=self.batch_size, device=self.device)
        self.seconds["features"] += tock - tick
        self.seconds["model"] += time.perf_counter() - tock
        self.calls += 1
        self.samples += len(batch)
        return scores

    def __call__(self, batch: Sequence[np.ndarray]) -> np.ndarray:
        if len(batch) == 0:
            return np.zeros(0, dtype=np.int64)
        return self.scores(batch).argmax(axis=1)


class TdnnNrPredictor(TdnnPredictor):
    """T-DNN-NR (paper §7.4.1): every sample, perturbed or clean, goes through RNNoise
    (:func:`sernoise.denoise.rnnoise_denoise`) before the features, as all its data did.  The
    stored denoised datasets are 16-bit; here the denoised audio goes to the features in float32.
    Denoising time is counted in ``seconds["features"]``."""

    def features(self, audio: np.ndarray) -> np.ndarray:
        from sernoise.denoise import rnnoise_denoise

        return super().features(rnnoise_denoise(np.asarray(audio, dtype=np.float32)))


def load_predictor(model: str, folder, device: str = "cpu"):
    """The predictor of model family ``model`` for a model folder (KeyError names the known families)."""
    try:
        target = PREDICTORS[model]
    except KeyError:
        raise KeyError(f"no attack predictor for model {model!r}; known: {sorted(PREDICTORS)}") from None
    module_name, attr = target.split(":")
    obj = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj(folder, device)

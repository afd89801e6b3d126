"""Black-box access to a trained model: ``predictor(batch of 16 kHz audio arrays) -> class indices``.

The attack only sees predicted labels (paper §7.5).  A predictor is built from a model folder
(``results/{corpus}/models/{model}/{regime}/fold{k}/rep{r}/{task}/``) by the ``attack`` entry
point of the model family's registry entry (:mod:`sernoise.model_registry`): a callable
``(folder, device) -> predictor``; the entry's ``model_files`` are the files of the folder that
the predictor reads (the attack rule's inputs).  Registered: the T-DNN (``tdnn``), the T-DNN on
RNNoise-denoised audio (``tdnn_nr``) and on DeepFilterNet3-denoised audio (``tdnn_dfn3``), the E-DNN on wav2vec2-base (``ednn``) and on
wav2vec2-large-robust (``ednn_nr``); an E-DNN also reads the pre-trained backbone folder that its
hparams.yaml names (the attack rule takes that folder's completion marker as an input too).

Every predictor counts its calls and samples and times its parts (``seconds``: ``features``, what
is done to each sample before the model, and ``model``), so that the benchmark can say how much of
the attack is spent in the model.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Sequence

import numpy as np

from sernoise.model_registry import RegistryError, get_model
from sernoise.model_registry import load as load_entry_point


class CountingPredictor:
    """A black-box predictor: ``features`` per sample, then ``model_scores`` of the batch; counts calls
    and samples and adds the time of each part to ``seconds``.  Subclasses define both parts."""

    def __init__(self):
        self.reset_counts()

    def reset_counts(self) -> None:
        """Count from zero again (an attack job counts each of its steps on its own)."""
        self.calls = 0
        self.samples = 0
        self.seconds = {"features": 0.0, "model": 0.0}

    def features(self, audio: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def model_scores(self, features: list[np.ndarray]) -> np.ndarray:
        raise NotImplementedError

    def scores(self, batch: Sequence[np.ndarray]) -> np.ndarray:
        """(len(batch), classes) scores of a batch of audio arrays."""
        tick = time.perf_counter()
        feats = [self.features(a) for a in batch]
        tock = time.perf_counter()
        scores = self.model_scores(feats)
        self.seconds["features"] += tock - tick
        self.seconds["model"] += time.perf_counter() - tock
        self.calls += 1
        self.samples += len(batch)
        return scores

    def __call__(self, batch: Sequence[np.ndarray]) -> np.ndarray:
        if len(batch) == 0:
            return np.zeros(0, dtype=np.int64)
        return self.scores(batch).argmax(axis=1)


class TdnnPredictor(CountingPredictor):
    """The T-DNN of paper §7.2 on raw audio: log Mel filterbanks (stored precision: float16),
    z-normalised with the model's training statistics (norm.npz), argmax of the scores.

    This is the path of the stored features (``extract_features`` + ``predict_model``), so the
    label of a clean utterance equals the one in the predictions file.
    """

    def __init__(self, model_pt, hparams_yaml, norm_npz, *, device: str = "cpu", batch_size: int = 64):
        from sernoise.training.data import load_norm
        from sernoise.training.predict import load_model

        super().__init__()
        self.model = load_model(model_pt, hparams_yaml, device=device)
        self.mean, self.std = load_norm(norm_npz)
        self.device, self.batch_size = device, int(batch_size)

    @classmethod
    def from_folder(cls, folder, device: str = "cpu") -> "TdnnPredictor":
        folder = Path(folder)
        return cls(folder / "model.pt", folder / "hparams.yaml", folder / "norm.npz", device=device)

    def features(self, audio: np.ndarray) -> np.ndarray:
        from sernoise.features import log_mel_fbank

        feats = log_mel_fbank(np.asarray(audio, dtype=np.float32)).astype(np.float16)
        return (feats.astype(np.float32) - self.mean) / self.std

    def model_scores(self, features: list[np.ndarray]) -> np.ndarray:
        from sernoise.training.loop import predict_proba

        return predict_proba(self.model, features, batch_size=self.batch_size, device=self.device)


class TdnnNrPredictor(TdnnPredictor):
    """T-DNN-NR (paper §7.4.1): every sample, perturbed or clean, goes through RNNoise
    (:func:`sernoise.denoise.rnnoise_denoise`) before the features, as all its data did.  The
    stored denoised datasets are 16-bit; here the denoised audio goes to the features in float32.
    Denoising time is counted in ``seconds["features"]``."""

    def features(self, audio: np.ndarray) -> np.ndarray:
        from sernoise.denoise import rnnoise_denoise

        return super().features(rnnoise_denoise(np.asarray(audio, dtype=np.float32)))


class TdnnDfn3Predictor(TdnnPredictor):
    """The T-DNN on DeepFilterNet3-denoised audio (``tdnn_dfn3``): every sample goes through DFN3
    (:func:`sernoise.denoise.dfn3_denoise`) before the features, as all its data did, with the
    options that denoised its data: ``denoise_options`` (the config's ``denoise.dfn3``, set by
    :func:`configure_denoiser`; None: the defaults)."""

    denoiser = "dfn3"  # the denoiser whose config options apply (configure_denoiser)
    denoise_options: dict | None = None

    def features(self, audio: np.ndarray) -> np.ndarray:
        from sernoise.denoise import dfn3_denoise

        return super().features(dfn3_denoise(np.asarray(audio, dtype=np.float32), **(self.denoise_options or {})))


class EdnnAttackPredictor(CountingPredictor):
    """The E-DNN (paper §7.3; ``ednn``) and E-DNN-NR (§7.4.2; ``ednn_nr``, the same model on
    wav2vec2-large-robust) on raw audio: float32 waveforms (the model normalises each one itself),
    softmax scores of the fine-tuned model, argmax.

    Wraps :class:`sernoise.training.ednn.EdnnPredictor` (``inner``), which loads the model folder as
    rule ``predict_audio_model`` does: hparams.yaml names the backbone folder, whose weights must be the
    ones the model was trained on (fingerprint), and model.pt holds the trained weights; batch size
    and mixed precision are those of its training.  ``save_path``: the wav2vec2 wrapper's cache folder (default:
    ``hf_cache`` beside the backbone folder, e.g. resources/pretrained/hf_cache, which the E-DNN
    rules use).  ``seconds["features"]`` is the conversion to float32.
    """

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    @classmethod
    def from_folder(cls, folder, device: str = "cpu", save_path=None) -> "EdnnAttackPredictor":
        from sernoise.training.ednn import EdnnPredictor

        return cls(EdnnPredictor.from_folder(folder, device, save_path=save_path))

    def features(self, audio: np.ndarray) -> np.ndarray:
        return np.asarray(audio, dtype=np.float32)

    def model_scores(self, features: list[np.ndarray]) -> np.ndarray:
        """Scores in batch order.  A waveform's scores do not depend on the rest of its batch:
        masked backbones ignore padding, and for wav2vec2-base (GroupNorm, no mask) the E-DNN's
        ``predict_proba`` batches equal lengths only (:func:`sernoise.training.ednn.predict_proba`)."""
        return self.inner.scores(features)


def model_files(model: str) -> tuple:
    """Files of a model folder the attack predictor of ``model`` reads (the attack rule's inputs)."""
    return tuple(get_model(model).model_files)


def configure_denoiser(predictor, config: dict | None):
    """Give a predictor that denoises with a configurable denoiser (its ``denoiser`` attribute: a
    name in :data:`sernoise.denoise.DENOISERS`) that denoiser's options from the workflow config
    (``denoise.<name>``, validated, defaults filled in), so that the attack denoises each query as
    the model's datasets were denoised; other predictors are returned unchanged."""
    name = getattr(predictor, "denoiser", None)
    if name is not None:
        from sernoise.denoise import get_denoiser

        predictor.denoise_options = get_denoiser(name).options(((config or {}).get("denoise") or {}).get(name))
    return predictor


def load_predictor(model: str, folder, device: str = "cpu"):
    """The attack predictor of model family ``model`` for a model folder (KeyError names the attackable families)."""
    try:
        target = get_model(model).attack
    except RegistryError as error:
        raise KeyError(str(error)) from None
    if target is None:
        raise KeyError(f"no attack predictor for model {model!r}: its registry entry has no attack entry point")
    return load_entry_point(target)(folder, device)

"""The E-DNN of paper §7.3 (and E-DNN-NR, §7.4.2): wav2vec2 -> masked mean pooling -> dense layers -> 3 classes.

Input: a zero-padded batch of 16 kHz waveforms ``wav`` (batch, samples) and their RELATIVE lengths
``wav_lens`` (batch,) in (0, 1], SpeechBrain's convention (the longest row has 1.0).

1. Each waveform is normalised to zero mean and unit variance over ITS OWN samples (what the
   Hugging Face feature extractor does before padding, when its ``do_normalize`` is set), and the
   padding is zeroed.  SpeechBrain's wrapper would normalise over the padded row instead, which
   makes an utterance's output depend on the padding, so its own normalisation is switched off.
2. wav2vec2 through SpeechBrain's Hugging Face wrapper
   (``speechbrain.integrations.huggingface.wav2vec2.Wav2Vec2``, formerly
   ``speechbrain.lobes.models.huggingface_transformers.wav2vec2``), loaded from a local folder
   only; the output of the last transformer layer (batch, frames, hidden).  The attention mask is
   passed when the model's feature extractor asks for one (``return_attention_mask``: the
   LayerNorm-CNN models such as wav2vec2-large-robust); wav2vec2-base (GroupNorm-CNN) is, as its
   documentation prescribes, fed zero-padded input without a mask.  Its GroupNorm normalises over
   time, padding included, so its outputs move slightly with the padding; batches are
   length-bucketed to keep that small.  With a LayerNorm CNN the pooled output does not depend on
   the padding (tests/test_ednn.py checks it).
3. MASKED mean pooling over the valid frames: an utterance of n samples has
   ``model._get_feat_extract_output_lengths(n)`` frames, the CNN's exact output length.
4. ``dense_layers`` hidden layers (``dense_units``, ReLU, dropout), then a linear 3-class output
   (logits).

Freezing (config ``ednn.freeze``):

* ``none``: everything is fine-tuned;
* ``feature_extractor`` (default, common practice): the CNN feature encoder is frozen;
* ``all_but_top_k``: everything but the top ``top_k`` transformer layers (and, for stable-layer-norm
  models, the encoder's final LayerNorm) is frozen;
* ``all``: wav2vec2 is a fixed feature extractor (run without gradients); only the dense layers learn.

Frozen sub-modules stay in eval mode when the model is put in training mode (no dropout inside a
part that does not learn; the encoder's LayerDrop, decided by the encoder, still applies to all its
layers during training).  :meth:`EDNN.trainable_state` is what a checkpoint holds:
the parameters that training changes (dense layers + unfrozen wav2vec2 parameters); the frozen
rest comes from the pre-trained folder.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

N_CLASSES = 3
FREEZE_MODES = ("none", "feature_extractor", "all_but_top_k", "all")
HPARAM_KEYS = ("dense_layers", "dense_units")
NORM_EPS = 1e-7  # the Hugging Face feature extractor's


@dataclass(frozen=True)
class EDNNConfig:
    """Head and freezing of one E-DNN (``dense_layers``/``dense_units`` come from the grid ``ednn.grid``)."""

    dense_layers: int = 1
    dense_units: int = 512
    dropout: float = 0.1
    freeze: str = "feature_extractor"
    top_k: int = 2
    n_classes: int = N_CLASSES

    def __post_init__(self):
        for key in ("dense_layers", "dense_units", "n_classes"):
            value = getattr(self, key)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"E-DNN hyper-parameter {key} must be a positive integer, got {value!r}")
        if not isinstance(self.top_k, int) or self.top_k < 0:
            raise ValueError(f"E-DNN top_k must be a non-negative integer, got {self.top_k!r}")
        if not 0.0 <= float(self.dropout) < 1.0:
            raise ValueError(f"E-DNN dropout must lie in [0, 1), got {self.dropout!r}")
        if self.freeze not in FREEZE_MODES:
            raise ValueError(f"E-DNN freeze must be one of {FREEZE_MODES}, got {self.freeze!r}")

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "EDNNConfig":
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown E-DNN hyper-parameter(s) {sorted(unknown)}")
        return cls(**values)


def relative_lengths(lengths, max_len: int | None = None) -> torch.Tensor:
    """Sample counts -> SpeechBrain relative lengths (longest = 1.0 unless ``max_len`` is larger)."""
    lengths = torch.as_tensor(lengths, dtype=torch.float32)
    total = float(max_len if max_len is not None else lengths.max())
    return lengths / total


def absolute_lengths(wav_lens: torch.Tensor, n_samples: int) -> torch.Tensor:
    """Relative lengths -> sample counts, rounded as SpeechBrain's ``make_padding_masks`` does."""
    return torch.round(wav_lens.float() * n_samples).long().clamp(min=1, max=n_samples)


def length_mask(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    return torch.arange(max_len, device=lengths.device)[None, :] < lengths[:, None]


def normalise_waveforms(wav: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Zero mean, unit variance per row over its first ``lengths[i]`` samples; padding zeroed."""
    mask = length_mask(lengths, wav.shape[1]).to(wav.dtype)
    n = lengths.to(wav.dtype).unsqueeze(1)
    mean = (wav * mask).sum(dim=1, keepdim=True) / n
    var = (((wav - mean) * mask) ** 2).sum(dim=1, keepdim=True) / n
    return (wav - mean) / torch.sqrt(var + NORM_EPS) * mask


def masked_mean(values: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` (batch, time, dim) over the first ``lengths[i]`` steps of each row."""
    mask = length_mask(lengths, values.shape[1]).to(values.dtype).unsqueeze(-1)
    return (values * mask).sum(dim=1) / lengths.clamp(min=1).to(values.dtype).unsqueeze(-1)


def _wav2vec2_class():
    try:
        from speechbrain.integrations.huggingface.wav2vec2 import Wav2Vec2
    except ImportError:  # SpeechBrain 1.0 layout
        from speechbrain.lobes.models.huggingface_transformers.wav2vec2 import Wav2Vec2
    return Wav2Vec2


def load_wav2vec2(folder, save_path=None, *, freeze: str = "feature_extractor"):
    """SpeechBrain's wav2vec2 wrapper on the Hugging Face model folder ``folder`` (local files only)."""
    folder = Path(folder)
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(f"{folder}: no config.json (pre-trained wav2vec2 folder expected; see rule fetch_pretrained)")
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    except ImportError:  # pragma: no cover
        pass
    save_path = Path(save_path) if save_path is not None else folder.parent / "hf_cache"
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*gradient_checkpointing_disable.*")
        logging.getLogger("speechbrain.integrations.huggingface").setLevel(logging.ERROR)
        return _wav2vec2_class()(
            str(folder), save_path=str(save_path), output_norm=False, freeze=freeze == "all",
            freeze_feature_extractor=freeze in ("feature_extractor", "all_but_top_k"),
            apply_spec_augment=False, output_all_hiddens=False, local_files_only=True,
        )


class EDNN(nn.Module):
    """wav2vec2 + masked mean pooling + dense layers (see the module docstring)."""

    def __init__(self, config: EDNNConfig, backbone_folder, save_path=None):
        super().__init__()
        self.config = config
        self.wav2vec2 = load_wav2vec2(backbone_folder, save_path, freeze=config.freeze)
        extractor = self.wav2vec2.feature_extractor
        self.normalize = bool(getattr(extractor, "do_normalize", True))
        self.use_attention_mask = bool(getattr(extractor, "return_attention_mask", False))
        self.sample_rate = int(getattr(extractor, "sampling_rate", 16000))
        self.wav2vec2.normalize_wav = False  # done per utterance in forward (see module doc)
        hidden = int(self.wav2vec2.model.config.hidden_size)
        layers, width = [], hidden
        for _ in range(config.dense_layers):
            layers += [nn.Linear(width, config.dense_units), nn.ReLU(), nn.Dropout(config.dropout)]
            width = config.dense_units
        self.dense = nn.Sequential(*layers)
        self.output = nn.Linear(width, config.n_classes)
        self._frozen_modules = self._apply_freezing()

    # -- freezing ----------------------------------------------------------------------
    def _apply_freezing(self) -> list[nn.Module]:
        """Set requires_grad per config.freeze; the sub-modules that are entirely frozen."""
        model = self.wav2vec2.model
        mode = self.config.freeze
        if mode == "none":
            for p in model.parameters():
                p.requires_grad = True
            return []
        if mode == "feature_extractor":
            for p in model.parameters():
                p.requires_grad = True
            for p in model.feature_extractor.parameters():
                p.requires_grad = False
            model.feature_extractor._requires_grad = False  # no gradient w.r.t. the input either
            return [model.feature_extractor]
        if mode == "all":
            for p in model.parameters():
                p.requires_grad = False
            return [model]
        # all_but_top_k
        for p in model.parameters():
            p.requires_grad = False
        model.feature_extractor._requires_grad = False
        layers = model.encoder.layers
        k = min(self.config.top_k, len(layers))
        top = list(layers[len(layers) - k:]) if k else []
        for layer in top:
            for p in layer.parameters():
                p.requires_grad = True
        if k and getattr(model.config, "do_stable_layer_norm", False):
            for p in model.encoder.layer_norm.parameters():  # applied after the top layer
                p.requires_grad = True
        frozen = [m for name, m in model.named_children() if name != "encoder"]
        frozen += [m for name, m in model.encoder.named_children() if name not in ("layers", "layer_norm")]
        frozen += list(layers[: len(layers) - k])
        if not (k and getattr(model.config, "do_stable_layer_norm", False)):
            frozen.append(model.encoder.layer_norm)
        return frozen

    def train(self, mode: bool = True):
        super().train(mode)
        for module in self._frozen_modules:
            module.eval()
        return self

    def trainable_names(self) -> list[str]:
        return [name for name, p in self.named_parameters() if p.requires_grad]

    def trainable_state(self) -> dict[str, torch.Tensor]:
        """What a checkpoint holds: every parameter that training changes, detached on the CPU."""
        wanted = set(self.trainable_names())
        return {k: v.detach().to("cpu", copy=True) for k, v in self.state_dict().items() if k in wanted}

    def load_trainable_state(self, state: dict[str, torch.Tensor]) -> None:
        """Load a :meth:`trainable_state`; its keys must be exactly the trainable parameters of this model."""
        wanted = set(self.trainable_names())
        given = set(state)
        if given != wanted:
            raise ValueError(f"checkpoint does not fit this E-DNN: missing {sorted(wanted - given)[:5]}, "
                             f"unexpected {sorted(given - wanted)[:5]} (different freeze setting or backbone?)")
        missing, unexpected = self.load_state_dict(state, strict=False)
        if unexpected:  # pragma: no cover - excluded above
            raise ValueError(f"unexpected keys {unexpected[:5]}")

    # -- forward -----------------------------------------------------------------------
    def frame_lengths(self, n_samples: torch.Tensor) -> torch.Tensor:
        return self.wav2vec2.model._get_feat_extract_output_lengths(n_samples).long().clamp(min=1)

    def embed(self, wav: torch.Tensor, wav_lens: torch.Tensor) -> torch.Tensor:
        """(batch, hidden): masked mean of the last wav2vec2 layer over each utterance's frames."""
        if wav.dim() != 2:
            raise ValueError(f"expected (batch, samples) waveforms, got {tuple(wav.shape)}")
        wav_lens = wav_lens.to(wav.device)
        lengths = absolute_lengths(wav_lens, wav.shape[1])
        if self.normalize:
            wav = normalise_waveforms(wav, lengths)
        else:
            wav = wav * length_mask(lengths, wav.shape[1]).to(wav.dtype)
        hidden = self.wav2vec2(wav, wav_lens if self.use_attention_mask else None)
        frames = self.frame_lengths(lengths).clamp(max=hidden.shape[1])
        return masked_mean(hidden, frames)

    def forward(self, wav: torch.Tensor, wav_lens: torch.Tensor) -> torch.Tensor:
        """(batch, n_classes) logits."""
        pooled = self.embed(wav, wav_lens)
        return self.output(self.dense(pooled.to(self.output.weight.dtype)))

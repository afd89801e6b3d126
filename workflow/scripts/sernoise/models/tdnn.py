"""The T-DNN of paper §7.2 (Table 1): 1-d convolutions over time -> GRU -> mean pooling -> dense -> 3 classes.

Input: a padded batch of log Mel filterbank sequences ``x`` (batch, frames, 40) and the true
``lengths`` (batch,).  The network:

1. ``conv_layers`` 1-d convolutions over time on the 40 filterbank channels, each with
   ``conv_channels`` kernels of width ``conv_width`` and ReLU.  "Same" padding keeps the
   length (for even widths the extra frame is padded on the right: ``(w - 1) // 2`` left,
   ``w // 2`` right).
2. ONE max pooling over time of width (and stride) ``pool_width``, after the conv stack.  The
   paper (Table 1: pooling width 2 or 4) does not say where the pooling sits; pooling after
   each of the 5 layers would divide the length by up to 4**5 = 1024 and shrink a 3 s
   utterance (300 frames) to nothing, so it is applied once.  ``ceil_mode`` keeps a last
   partial window, so an utterance of L frames gives ``ceil(L / pool_width)`` steps (>= 1).
3. A GRU (``gru_layers`` layers, ``gru_units`` units) run on packed sequences with the true
   (pooled) lengths: padding never enters the recurrence.
4. MASKED mean pooling: the mean of the GRU outputs over the valid time steps only.
5. ``dense_layers`` hidden layers (width ``gru_units``, ReLU), then a linear 3-class output
   (logits; softmax is applied by the loss / at prediction time).

Initialisation (``conv_init``): ``"he"`` (default) draws the convolution kernels from He et
al.'s normal for ReLU layers (std sqrt(2 / fan_in)) with zero biases; ``"pytorch"`` keeps
PyTorch's default (uniform, bound 1/sqrt(fan_in)), which divides the variance by about 6 per
ReLU layer: after the 5 layers of the paper's grid the RMS activation is 0.04 (He: 0.68) and the
pooled GRU output is almost the same for every utterance (std across a batch of random inputs
6e-4 against 3.6e-2), so the first epochs sit at the loss of a constant prediction (ln 3) and
some seeds never leave it (benchmarks/degenerate_sweep.py measures both).  The GRU and dense
layers keep PyTorch's initialisation.

Padding invariance: after every convolution the padded positions are set to zero again, so
a valid frame near the end of a short utterance sees the same zeros it would see if the
utterance were alone in its batch; ReLU outputs are non-negative, so a pooling window that
reaches into (zeroed) padding has the same maximum as the partial window of the lone
utterance.  The output of an utterance therefore does not depend on how much it is padded
(tests/test_tdnn.py checks it).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

N_CLASSES = 3
N_FEATURES = 40
CONV_INITS = ("he", "pytorch")
HPARAM_KEYS = ("conv_channels", "conv_width", "conv_layers", "pool_width", "gru_layers", "gru_units", "dense_layers")


@dataclass(frozen=True)
class TDNNConfig:
    """One point of the hyper-parameter grid (config ``tdnn.grid``)."""

    conv_channels: int = 64
    conv_width: int = 2
    conv_layers: int = 5
    pool_width: int = 2
    gru_layers: int = 1
    gru_units: int = 32
    dense_layers: int = 1
    n_features: int = N_FEATURES
    n_classes: int = N_CLASSES

    def __post_init__(self):
        for key in HPARAM_KEYS + ("n_features", "n_classes"):
            value = getattr(self, key)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"T-DNN hyper-parameter {key} must be a positive integer, got {value!r}")

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "TDNNConfig":
        known = set(HPARAM_KEYS) | {"n_features", "n_classes"}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown T-DNN hyper-parameter(s) {sorted(unknown)}")
        return cls(**{k: int(v) for k, v in values.items()})


def length_mask(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    """(batch, max_len) bool mask, True on valid steps."""
    return torch.arange(max_len, device=lengths.device)[None, :] < lengths[:, None]


def masked_mean(values: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` (batch, time, dim) over the first ``lengths[i]`` steps of each row."""
    mask = length_mask(lengths, values.shape[1]).to(values.dtype).unsqueeze(-1)
    total = (values * mask).sum(dim=1)
    return total / lengths.clamp(min=1).to(values.dtype).unsqueeze(-1)


def pooled_lengths(lengths: torch.Tensor, pool_width: int) -> torch.Tensor:
    """Lengths after max pooling of width/stride ``pool_width`` with ceil_mode (at least 1)."""
    return torch.div(lengths + pool_width - 1, pool_width, rounding_mode="floor").clamp(min=1)


class TDNN(nn.Module):
    """CNN + GRU emotion classifier on filterbank sequences (see the module docstring)."""

    def __init__(self, config: TDNNConfig | None = None, *, conv_init: str = "he", **hparams):
        super().__init__()
        if config is None:
            config = TDNNConfig(**hparams)
        elif hparams:
            raise TypeError("give either a TDNNConfig or keyword hyper-parameters, not both")
        if conv_init not in CONV_INITS:
            raise ValueError(f"T-DNN conv_init must be one of {list(CONV_INITS)}, got {conv_init!r}")
        self.config = config
        width = config.conv_width
        self._pad = ((width - 1) // 2, width // 2)
        # The same "same" padding done inside the convolution: symmetric zero padding of
        # max(left, right) frames, then the window that an explicit (left, right) pad gives.
        # Bit-identical outputs and gradients, and no padded copy of the activations per layer
        # (the conv stack's forward + backward costs about a quarter less on one CPU thread).
        self._conv_padding = max(self._pad)
        self._conv_start = self._conv_padding - self._pad[0]
        channels = [config.n_features] + [config.conv_channels] * config.conv_layers
        self.convs = nn.ModuleList(nn.Conv1d(channels[i], channels[i + 1], width) for i in range(config.conv_layers))
        self.gru = nn.GRU(config.conv_channels, config.gru_units, num_layers=config.gru_layers, batch_first=True)
        dense = []
        for _ in range(config.dense_layers):
            dense += [nn.Linear(config.gru_units, config.gru_units), nn.ReLU()]
        self.dense = nn.Sequential(*dense)
        self.output = nn.Linear(config.gru_units, config.n_classes)
        if conv_init == "he":  # last, so that the other layers draw the same weights under either choice
            for conv in self.convs:
                nn.init.kaiming_normal_(conv.weight, nonlinearity="relu")
                nn.init.zeros_(conv.bias)

    def embed(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(batch, gru_units): the masked mean of the GRU outputs."""
        if x.dim() != 3 or x.shape[2] != self.config.n_features:
            raise ValueError(f"expected (batch, frames, {self.config.n_features}) features, got {tuple(x.shape)}")
        lengths = lengths.to(device=x.device, dtype=torch.long)
        if lengths.numel() != x.shape[0] or int(lengths.min()) < 1 or int(lengths.max()) > x.shape[1]:
            raise ValueError(f"lengths must lie in [1, {x.shape[1]}] for each of the {x.shape[0]} rows")
        # A batch without padding (training crops of equal length, equal-length evaluation
        # batches) needs no masks and no packed GRU: the same network, computed without them
        # (packing costs as much as the GRU itself on a CPU).
        unpadded = int(lengths.min()) == x.shape[1]
        mask = None if unpadded else length_mask(lengths, x.shape[1]).unsqueeze(1).to(x.dtype)  # (batch, 1, time)
        h = x.transpose(1, 2) if unpadded else x.transpose(1, 2) * mask  # (batch, channels, time), padding zeroed
        h = self.conv_stack(h, mask)
        pool = self.config.pool_width
        if pool > 1:
            h = F.max_pool1d(h, pool, stride=pool, ceil_mode=True)
            lengths = pooled_lengths(lengths, pool)
        h = h.transpose(1, 2)  # (batch, time, channels)
        if unpadded:
            out, _ = self.gru(h)
            return out.mean(dim=1)
        packed = pack_padded_sequence(h, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, _ = self.gru(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=h.shape[1])
        return masked_mean(out, lengths)

    def conv_stack(self, h: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """The convolutions with ReLU on (batch, channels, time), padded positions zeroed after each when ``mask``."""
        frames, start, padding = h.shape[2], self._conv_start, self._conv_padding
        for conv in self.convs:
            h = F.relu(F.conv1d(h, conv.weight, conv.bias, padding=padding)[:, :, start:start + frames])
            if mask is not None:
                h = h * mask
        return h

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(batch, n_classes) logits."""
        return self.output(self.dense(self.embed(x, lengths)))

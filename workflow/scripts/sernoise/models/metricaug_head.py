"""The MetricAug classifier head (Wu & Lee §2.2, after Li & Lee 2022): a linear reduction of the
input frames to H dimensions, one GRU layer, one transformer encoder layer with two heads,
mean pooling over time and a linear layer to the classes (softmax in the loss / at prediction).

"Except the last layer, all hidden dimensions of layers are consistent": the GRU, the encoder's
model width and its feed-forward width are all H.  The paper feeds 512-d vq-wav2vec codes; here
the input is the workflow's 40-d log Mel filterbanks (vq-wav2vec weights are not available), so
``n_features`` is 40.

Padding: the GRU runs on packed sequences, the encoder masks padded keys and the mean pools the
valid steps only, so an utterance's output does not depend on how much it is padded (up to
float rounding).  H must be even (two attention heads).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

HPARAM_KEYS = ("hidden",)


@dataclass(frozen=True)
class HeadConfig:
    hidden: int = 16  # H (the paper's best: 16; grid 8..128)
    n_features: int = 40
    n_classes: int = 4
    heads: int = 2

    def __post_init__(self):
        for key in ("hidden", "n_features", "n_classes", "heads"):
            value = getattr(self, key)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"metricaug head: {key} must be a positive integer, got {value!r}")
        if self.hidden % self.heads:
            raise ValueError(f"metricaug head: hidden {self.hidden} must be divisible by heads {self.heads}")

    def as_dict(self) -> dict:
        return asdict(self)


class MetricAugHead(nn.Module):
    def __init__(self, config: HeadConfig):
        super().__init__()
        self.config = config
        h = config.hidden
        self.reduce = nn.Linear(config.n_features, h)
        self.gru = nn.GRU(h, h, num_layers=1, batch_first=True)
        self.encoder = nn.TransformerEncoderLayer(d_model=h, nhead=config.heads, dim_feedforward=h, dropout=0.0,
                                                  batch_first=True)
        self.out = nn.Linear(h, config.n_classes)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        lengths = lengths.to("cpu")
        steps = x.shape[1]
        hidden = self.reduce(x)
        packed = pack_padded_sequence(hidden, lengths, batch_first=True, enforce_sorted=False)
        hidden, _ = pad_packed_sequence(self.gru(packed)[0], batch_first=True, total_length=steps)
        valid = torch.arange(steps, device=x.device)[None, :] < lengths.to(x.device)[:, None]
        hidden = self.encoder(hidden, src_key_padding_mask=~valid)
        hidden = hidden.masked_fill(~valid[..., None], 0.0)
        pooled = hidden.sum(dim=1) / lengths.to(x.device, hidden.dtype)[:, None]
        return self.out(pooled)

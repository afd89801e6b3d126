"""The five models of Latif et al. (§3, §4.4): DenseNet-LSTM-Highway ("proposed") and four baselines.

Every model takes a batch of normalised log-spectrogram segments ``x`` (batch, context, n_bins)
(sernoise.latif.spectrogram; default 256 frames x 128 bins), treats it as a one-channel image
(time x frequency) and returns logits (batch, n_classes); the softmax is applied by the loss and
at prediction time.  Batch normalisation precedes every ReLU (paper §4.4: "batch normalisation
is employed before the non-linearities"; the DenseNet layers are pre-activation: BN-ReLU-Conv).

Building blocks (Huang et al.'s DenseNet, Srivastava et al.'s highway networks):

* :class:`DenseLayer`: BN-ReLU-Conv3x3 producing ``growth`` (G) feature maps.
* :class:`DenseBlock` (L, G): L dense layers, each fed the concatenation of the block input and
  every earlier layer's output (Eq. 1); output channels = input + L * G.
* :class:`Transition`: BN-ReLU-Conv1x1 then 2x2 average pooling with stride 2.  The 1x1
  convolution halves the channels (DenseNet-BC's compression 0.5; the paper does not give it):
  without it the second block's input, and the LSTM's, would be twice as wide for no reported gain.
* :class:`Highway` (units): ``y = T(x) * H(x) + (1 - T(x)) * x`` (Eq. 2 with the usual coupled
  carry gate C = 1 - T), H = ReLU(BN(W_H x + b_H)), T = sigmoid(W_T x + b_T).  The gate bias
  starts at -1 (Srivastava et al. recommend a negative start): the layers begin close to the
  identity and learn when to transform.  No BN before the sigmoid: it would cancel that bias.

Stem (the paper's "initial convolutional layer"; size not given): Conv3x3 with stride 2 and
2 * G channels (DenseNet's convention for the stem width), BN-ReLU, then 2x2 max pooling, so the
first DenseBlock sees a 64 x 32 map of a 256 x 128 segment instead of the full one.  Like the
7x7/2 convolution plus 3x3/2 max pooling of the original DenseNet, this divides both axes by 4;
it is what keeps the models trainable on a 2-core CPU: without the down-sampling the proposed
model's forward pass costs 13.7 GFLOP per segment instead of 0.86 (16 times the positions).
benchmarks/latif_throughput.py measures every model's training throughput.

Models (``build_model(name, ...)``):

* ``proposed`` (DenseNet-LSTM-Highway, Fig. 1): stem, DenseBlock(6, 24), Transition,
  DenseBlock(6, 24), BN-ReLU, reshape to one vector per time step (channels x frequency), LSTM
  (128 units, one layer; size not given in the paper), its LAST hidden state, dropout 0.5.
  Skip connections: the paper sums "the features of each DenseBlock" although the two blocks'
  maps differ in channels and size; each block output is therefore globally average pooled to a
  channel vector and projected linearly to 128 (the LSTM width), and the two projections are
  summed.  [LSTM features ; skip sum] (256) -> Linear-BN-ReLU to 128 (a highway layer keeps its
  width, so its input needs the 128 units) -> three Highway(128) -> Linear to the classes.
* ``densenet``: stem (2 * 16 channels), DenseBlock(6, 16), Transition, DenseBlock(6, 16),
  Transition, DenseBlock(6, 16), BN-ReLU, global average pooling, dense 1000 (Linear-BN-ReLU),
  dropout 0.5, Linear to the classes.  Transitions sit between blocks (the paper's "3x3 global
  average pooling" after the last block takes the place of a third transition).
* ``densenet_lstm``: ``densenet`` with the global average pooling replaced by the reshape and
  an LSTM (128 units, last state) as in ``proposed``, then the same dense 1000 and output.
* ``cnn_lstm``: the paper follows Satt et al. (2017), whose sizes are not restated; we use four
  Conv3x3-BN-ReLU-MaxPool2x2 layers of 16, 32, 64, 64 channels (a 256 x 128 segment becomes
  16 x 8), reshape, LSTM (128 units, last state), dropout 0.5, Linear to the classes.
* ``cnn``: ``cnn_lstm`` with a fully connected layer (128 units, Linear-BN-ReLU) on the
  flattened maps instead of the LSTM (paper §4.4); it is the only model tied to one ``context``.

Dropout 0.5 follows the last hidden representation of every model (the paper gives it for the
proposed model's LSTM only; applying it everywhere keeps the comparison about architecture).
Convolutions use He (Kaiming normal) initialisation for ReLU; BN weights 1, biases 0.  Given
``seed``, :func:`build_model` draws the initial weights from a private generator, so the same
seed gives identical weights whatever the global torch RNG state (and leaves that state alone).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

MODELS = ("proposed", "densenet", "densenet_lstm", "cnn_lstm", "cnn")
MODEL_LABELS = {
    "proposed": "DenseNet-LSTM-Highway",
    "densenet": "DenseNet",
    "densenet_lstm": "DenseNet-LSTM",
    "cnn_lstm": "CNN-LSTM",
    "cnn": "CNN",
}
N_BINS = 128
CONTEXT = 256
DROPOUT = 0.5
LSTM_UNITS = 128
HIGHWAY_UNITS = 128
HIGHWAY_LAYERS = 3
DENSE_UNITS = 1000  # the DenseNet baselines' fully connected layer (paper §4.4)
CNN_CHANNELS = (16, 32, 64, 64)
CNN_DENSE_UNITS = 128
GATE_BIAS = -1.0


class DenseLayer(nn.Module):
    """BN-ReLU-Conv3x3 producing ``growth`` maps; :class:`DenseBlock` concatenates them to its input."""

    def __init__(self, in_channels: int, growth: int):
        super().__init__()
        self.norm = nn.BatchNorm2d(in_channels)
        self.conv = nn.Conv2d(in_channels, growth, kernel_size=3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.relu(self.norm(x)))


class DenseBlock(nn.Module):
    """DenseBlock(L, G) (paper Eq. 1): each layer sees every earlier map; out channels = in + L * G."""

    def __init__(self, in_channels: int, layers: int = 6, growth: int = 24):
        super().__init__()
        if min(in_channels, layers, growth) < 1:
            raise ValueError(f"DenseBlock needs positive in_channels, layers and growth, got "
                             f"{in_channels}, {layers}, {growth}")
        self.layers = nn.ModuleList(DenseLayer(in_channels + k * growth, growth) for k in range(layers))
        self.out_channels = in_channels + layers * growth

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [x]
        for layer in self.layers:
            features.append(layer(torch.cat(features, dim=1)))
        return torch.cat(features, dim=1)


class Transition(nn.Module):
    """BN-ReLU-Conv1x1 (to ``out_channels``) and 2x2 average pooling with stride 2."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.norm = nn.BatchNorm2d(in_channels)
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=1, bias=False)
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(self.conv(F.relu(self.norm(x))), kernel_size=2, stride=2)


class Highway(nn.Module):
    """One highway layer of ``units`` units: ``y = T * H(x) + (1 - T) * x`` (paper Eq. 2)."""

    def __init__(self, units: int):
        super().__init__()
        self.linear = nn.Linear(units, units, bias=False)
        self.norm = nn.BatchNorm1d(units)
        self.gate_linear = nn.Linear(units, units)
        nn.init.constant_(self.gate_linear.bias, GATE_BIAS)

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        """H(x) = ReLU(BN(W_H x))."""
        return F.relu(self.norm(self.linear(x)))

    def gate(self, x: torch.Tensor) -> torch.Tensor:
        """The transform gate T(x) in (0, 1), one value per unit."""
        return torch.sigmoid(self.gate_linear(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = self.gate(x)
        return gate * self.transform(x) + (1.0 - gate) * x


def _dense_head(in_features: int, units: int) -> nn.Sequential:
    """Linear-BN-ReLU (BN before the non-linearity, as in every layer of these models)."""
    return nn.Sequential(nn.Linear(in_features, units, bias=False), nn.BatchNorm1d(units), nn.ReLU())


class _Stem(nn.Module):
    """The initial convolution: Conv3x3 stride 2, BN-ReLU, 2x2 max pooling (both axes / 4)."""

    def __init__(self, out_channels: int):
        super().__init__()
        self.conv = nn.Conv2d(1, out_channels, kernel_size=3, stride=2, padding=1, bias=False)
        self.norm = nn.BatchNorm2d(out_channels)
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.max_pool2d(F.relu(self.norm(self.conv(x))), kernel_size=2, stride=2)

    @staticmethod
    def size(n: int) -> int:
        return ((n - 1) // 2 + 1) // 2  # stride-2 conv with padding 1 (ceil), then pooling (floor)


class _LastState(nn.Module):
    """Reshape (batch, channels, time, freq) to one vector per time step, run an LSTM, keep its last hidden state."""

    def __init__(self, channels: int, freq: int, units: int = LSTM_UNITS):
        super().__init__()
        self.lstm = nn.LSTM(channels * freq, units, batch_first=True)

    def forward(self, maps: torch.Tensor) -> torch.Tensor:
        batch, channels, time, freq = maps.shape
        steps = maps.permute(0, 2, 1, 3).reshape(batch, time, channels * freq)
        _, (hidden, _) = self.lstm(steps)
        return hidden[-1]


class _SegmentModel(nn.Module):
    """Input checks shared by the five models: (batch, context, n_bins) -> (batch, 1, context, n_bins)."""

    fixed_context = False  # True where a layer's size depends on the number of frames

    def __init__(self, n_classes: int, n_bins: int, context: int):
        super().__init__()
        self.n_classes, self.n_bins, self.context = n_classes, n_bins, context

    def _image(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 3 or x.shape[2] != self.n_bins or (self.fixed_context and x.shape[1] != self.context):
            want = f"(batch, {self.context if self.fixed_context else 'frames'}, {self.n_bins})"
            raise ValueError(f"{type(self).__name__} expects segments {want}, got {tuple(x.shape)}")
        return x.unsqueeze(1)


class ProposedModel(_SegmentModel):
    """DenseNet-LSTM-Highway (see the module docstring)."""

    def __init__(self, n_classes: int, *, n_bins: int = N_BINS, context: int = CONTEXT, layers: int = 6,
                 growth: int = 24):
        super().__init__(n_classes, n_bins, context)
        self.stem = _Stem(2 * growth)
        self.block1 = DenseBlock(self.stem.out_channels, layers, growth)
        self.transition = Transition(self.block1.out_channels, self.block1.out_channels // 2)
        self.block2 = DenseBlock(self.transition.out_channels, layers, growth)
        self.norm = nn.BatchNorm2d(self.block2.out_channels)
        freq = _Stem.size(n_bins) // 2
        self.context_model = _LastState(self.block2.out_channels, freq)
        self.dropout = nn.Dropout(DROPOUT)
        self.skip1 = nn.Linear(self.block1.out_channels, LSTM_UNITS)
        self.skip2 = nn.Linear(self.block2.out_channels, LSTM_UNITS)
        self.project = _dense_head(2 * LSTM_UNITS, HIGHWAY_UNITS)
        self.highways = nn.Sequential(*(Highway(HIGHWAY_UNITS) for _ in range(HIGHWAY_LAYERS)))
        self.output = nn.Linear(HIGHWAY_UNITS, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        first = self.block1(self.stem(self._image(x)))
        second = self.block2(self.transition(first))
        context = self.dropout(self.context_model(F.relu(self.norm(second))))
        skips = self.skip1(first.mean(dim=(2, 3))) + self.skip2(second.mean(dim=(2, 3)))
        return self.output(self.highways(self.project(torch.cat([context, skips], dim=1))))


class DenseNetModel(_SegmentModel):
    """The DenseNet baseline (``lstm=False``) and DenseNet-LSTM (``lstm=True``)."""

    def __init__(self, n_classes: int, *, n_bins: int = N_BINS, context: int = CONTEXT, lstm: bool = False,
                 layers: int = 6, growth: int = 16, blocks: int = 3):
        super().__init__(n_classes, n_bins, context)
        self.stem = _Stem(2 * growth)
        stages, channels, freq = [], self.stem.out_channels, _Stem.size(n_bins)
        for k in range(blocks):
            block = DenseBlock(channels, layers, growth)
            stages.append(block)
            channels = block.out_channels
            if k < blocks - 1:
                stages.append(Transition(channels, channels // 2))
                channels, freq = channels // 2, freq // 2
        self.features = nn.Sequential(*stages, nn.BatchNorm2d(channels), nn.ReLU())
        self.context_model = _LastState(channels, freq) if lstm else None
        self.dense = _dense_head(LSTM_UNITS if lstm else channels, DENSE_UNITS)
        self.dropout = nn.Dropout(DROPOUT)
        self.output = nn.Linear(DENSE_UNITS, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        maps = self.features(self.stem(self._image(x)))
        pooled = self.context_model(maps) if self.context_model is not None else maps.mean(dim=(2, 3))
        return self.output(self.dropout(self.dense(pooled)))


class CNNModel(_SegmentModel):
    """CNN-LSTM (``lstm=True``) after Satt et al., and the CNN with a dense layer in the LSTM's place."""

    def __init__(self, n_classes: int, *, n_bins: int = N_BINS, context: int = CONTEXT, lstm: bool = True,
                 channels: tuple[int, ...] = CNN_CHANNELS):
        super().__init__(n_classes, n_bins, context)
        self.fixed_context = not lstm
        layers, previous, time, freq = [], 1, context, n_bins
        for width in channels:
            layers += [nn.Conv2d(previous, width, kernel_size=3, padding=1, bias=False), nn.BatchNorm2d(width),
                       nn.ReLU(), nn.MaxPool2d(2)]
            previous, time, freq = width, time // 2, freq // 2
        self.features = nn.Sequential(*layers)
        if lstm:
            self.context_model = _LastState(previous, freq)
            self.dense = None
            width = LSTM_UNITS
        else:
            self.context_model = None
            self.dense = _dense_head(previous * time * freq, CNN_DENSE_UNITS)
            width = CNN_DENSE_UNITS
        self.dropout = nn.Dropout(DROPOUT)
        self.output = nn.Linear(width, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        maps = self.features(self._image(x))
        hidden = self.context_model(maps) if self.context_model is not None else self.dense(maps.flatten(1))
        return self.output(self.dropout(hidden))


class Normalised(nn.Module):
    """``net`` fed z-normalised segments: ``net((x - mean) / std)`` with per-bin training statistics.

    The statistics are buffers, so the state dict (``model.pt`` of a main-pipeline model folder,
    sernoise.latif.family) carries them with the weights, and a white-box or black-box attack on the
    raw log spectrogram goes through the same normalisation as training did.  ``n_classes``,
    ``n_bins`` and ``context`` are ``net``'s.
    """

    def __init__(self, net: nn.Module, mean, std):
        super().__init__()
        mean = torch.as_tensor(mean, dtype=torch.float32)
        std = torch.as_tensor(std, dtype=torch.float32)
        if mean.dim() != 1 or std.shape != mean.shape or mean.numel() != net.n_bins or not bool((std > 0).all()):
            raise ValueError(f"normalisation statistics must be {net.n_bins} means and positive stds, got shapes "
                             f"{tuple(mean.shape)} and {tuple(std.shape)}")
        self.net = net
        self.n_classes, self.n_bins, self.context = net.n_classes, net.n_bins, net.context
        self.register_buffer("mean", mean.clone())
        self.register_buffer("std", std.clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net((x - self.mean) / self.std)


def minimum_size(name: str) -> int:
    """The smallest ``context`` and ``n_bins`` model ``name`` accepts (every down-sampling must leave >= 1)."""
    factors = {"proposed": 8, "densenet": 16, "densenet_lstm": 16, "cnn_lstm": 16, "cnn": 16}
    if name not in factors:
        raise ValueError(f"unknown Latif model {name!r}; known: {', '.join(MODELS)}")
    return factors[name]


def build_model(name: str, n_classes: int, *, n_bins: int = N_BINS, context: int = CONTEXT,
                seed: int | None = None) -> nn.Module:
    """A freshly initialised model ``name`` (one of :data:`MODELS`) with ``n_classes`` outputs.

    ``seed``: draw the initial weights from ``torch.manual_seed(seed)`` inside a forked RNG, so
    the result depends on the seed only and the caller's RNG state is untouched.
    """
    if name not in MODELS:
        raise ValueError(f"unknown Latif model {name!r}; known: {', '.join(MODELS)}")
    for key, value in (("n_classes", n_classes), ("n_bins", n_bins), ("context", context)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"Latif model {key} must be a positive integer, got {value!r}")
    smallest = minimum_size(name)
    if min(n_bins, context) < smallest:
        raise ValueError(f"Latif model {name!r} needs context and n_bins >= {smallest} (it down-samples both axes), "
                         f"got context={context}, n_bins={n_bins}")
    if seed is None:
        return _construct(name, n_classes, n_bins, context)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        return _construct(name, n_classes, n_bins, context)


def _construct(name: str, n_classes: int, n_bins: int, context: int) -> nn.Module:
    if name == "proposed":
        model = ProposedModel(n_classes, n_bins=n_bins, context=context)
    elif name in ("densenet", "densenet_lstm"):
        model = DenseNetModel(n_classes, n_bins=n_bins, context=context, lstm=name == "densenet_lstm")
    else:
        model = CNNModel(n_classes, n_bins=n_bins, context=context, lstm=name == "cnn_lstm")
    _initialise(model)
    return model


def _initialise(model: nn.Module) -> None:
    """He initialisation of the convolutions (ReLU networks); BN to identity.  Linear and LSTM keep PyTorch's."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
        elif isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)

"""The T-DNN (paper §7.2): output shape, masked mean pooling, padding invariance."""

from __future__ import annotations

import pytest
import torch

from sernoise.models.tdnn import TDNN, TDNNConfig, length_mask, masked_mean, pooled_lengths

SMALL = dict(conv_channels=8, conv_width=2, conv_layers=5, pool_width=2, gru_layers=1, gru_units=6, dense_layers=1)


def _model(**overrides) -> TDNN:
    torch.manual_seed(0)
    return TDNN(TDNNConfig(**{**SMALL, **overrides})).eval()


def test_output_shape_and_finite():
    model = _model()
    x = torch.randn(4, 50, 40)
    out = model(x, torch.tensor([50, 31, 7, 1]))
    assert out.shape == (4, 3) and torch.isfinite(out).all()


def test_layer_counts_follow_the_config():
    model = _model(conv_layers=3, gru_layers=2, dense_layers=2)
    assert len(model.convs) == 3 and model.gru.num_layers == 2
    assert sum(isinstance(m, torch.nn.Linear) for m in model.dense) == 2
    assert model.convs[0].in_channels == 40 and all(c.out_channels == 8 for c in model.convs)
    assert model.output.out_features == 3


def test_masked_mean_ignores_padding():
    values = torch.tensor([[[1.0], [3.0], [100.0]], [[2.0], [-50.0], [7.0]]])
    out = masked_mean(values, torch.tensor([2, 1]))
    assert torch.allclose(out, torch.tensor([[2.0], [2.0]]))
    assert length_mask(torch.tensor([2, 1]), 3).tolist() == [[True, True, False], [True, False, False]]


def test_pooled_lengths_keep_a_partial_window():
    assert pooled_lengths(torch.tensor([1, 2, 3, 300, 301]), 4).tolist() == [1, 1, 1, 75, 76]


@pytest.mark.parametrize("pool_width, conv_width", [(2, 2), (4, 2), (3, 3), (1, 1)])
def test_output_does_not_depend_on_padding(pool_width, conv_width):
    model = _model(pool_width=pool_width, conv_width=conv_width)
    torch.manual_seed(1)
    sequences = [torch.randn(n, 40) for n in (37, 12, 5, 1, 64)]
    alone = torch.cat([model(s[None], torch.tensor([len(s)])) for s in sequences])
    # One padded batch, padding filled with garbage: the padded values must not matter.
    batch = torch.full((len(sequences), 90, 40), 1e3)
    for i, s in enumerate(sequences):
        batch[i, : len(s)] = s
    together = model(batch, torch.tensor([len(s) for s in sequences]))
    assert torch.allclose(alone, together, atol=1e-5), (alone - together).abs().max()


def test_lengths_are_kept_through_the_convolutions():
    model = _model(conv_width=2, pool_width=1)
    x = torch.randn(1, 9, 40)
    h = x.transpose(1, 2)
    for conv in model.convs:
        h = conv(torch.nn.functional.pad(h, model._pad))
    assert h.shape[-1] == 9


def test_bad_input_is_a_clear_error():
    model = _model()
    with pytest.raises(ValueError, match="40"):
        model(torch.randn(2, 10, 13), torch.tensor([10, 10]))
    with pytest.raises(ValueError, match="lengths"):
        model(torch.randn(2, 10, 40), torch.tensor([11, 3]))
    with pytest.raises(ValueError, match="gru_units"):
        TDNNConfig(gru_units=0)
    with pytest.raises(ValueError, match="unknown"):
        TDNNConfig.from_dict({"gru_unit": 3})


def _conv_rms(model: TDNN, x: torch.Tensor) -> list[float]:
    h, rms = x.transpose(1, 2), []
    for conv in model.convs:
        h = torch.relu(conv(torch.nn.functional.pad(h, model._pad)))
        rms.append(float(h.pow(2).mean().sqrt()))
    return rms


def test_he_initialisation_keeps_the_signal_through_the_conv_stack():
    torch.manual_seed(0)
    x, lengths = torch.randn(16, 120, 40), torch.full((16,), 120)
    hparams = {"conv_channels": 64, "conv_width": 2, "conv_layers": 5, "pool_width": 4, "gru_units": 32}
    torch.manual_seed(1)
    he = TDNN(**hparams)
    torch.manual_seed(1)
    default = TDNN(conv_init="pytorch", **hparams)
    with torch.no_grad():
        he_rms, default_rms = _conv_rms(he, x), _conv_rms(default, x)
        # PyTorch's default divides the variance by ~6 per ReLU layer; He keeps it within a factor ~2
        assert he_rms[-1] > 0.4 and default_rms[-1] < 0.1
        assert all(float(conv.bias.abs().max()) == 0.0 for conv in he.convs)
        # the embedding tells utterances apart from the start
        assert float(he.embed(x, lengths).std(0).mean()) > 10 * float(default.embed(x, lengths).std(0).mean())
    assert torch.equal(he.gru.weight_ih_l0, default.gru.weight_ih_l0)  # only the convolutions differ
    with pytest.raises(ValueError, match="conv_init must be one of"):
        TDNN(conv_init="xavier", **hparams)


def test_an_unpadded_batch_trains_as_the_padded_computation_does():
    """Equal-length batches (training crops) skip the masks and the packed GRU: same outputs, same gradients."""
    model = _model(pool_width=4, conv_width=2)
    torch.manual_seed(2)
    x = torch.randn(6, 50, 40)
    lengths = torch.full((6,), 50)
    fast = model(x, lengths)
    grads_fast = torch.autograd.grad(fast.logsumexp(1).sum(), list(model.parameters()))
    # the same rows with one frame of padding each: the masked, packed path
    padded = torch.cat([x, torch.full((6, 1, 40), 1e3)], dim=1)
    slow = model(padded, lengths)
    grads_slow = torch.autograd.grad(slow.logsumexp(1).sum(), list(model.parameters()))
    assert torch.allclose(fast, slow, atol=1e-5)
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(grads_fast, grads_slow))


@pytest.mark.parametrize("conv_width", [1, 2, 3, 4])
def test_padding_inside_the_convolution_is_the_explicit_same_padding_bit_for_bit(conv_width):
    # embed pads inside conv1d (symmetric, then the window of the (left, right) pad): the same
    # outputs and gradients as an explicit F.pad of model._pad before each convolution
    torch.manual_seed(1)
    model = _model(conv_width=conv_width, conv_channels=16, pool_width=1)
    x = torch.randn(3, 37, 40)

    def explicit():
        h = x.transpose(1, 2)
        for conv in model.convs:
            h = torch.relu(conv(torch.nn.functional.pad(h, model._pad)))
        return h.transpose(1, 2)

    def conv_grads(out):
        model.zero_grad()
        out.pow(2).sum().backward()
        return [p.grad.clone() for p in model.convs.parameters()]

    reference = explicit()
    ours = model.conv_stack(x.transpose(1, 2)).transpose(1, 2)
    assert torch.equal(ours, reference)
    assert all(torch.equal(a, b) for a, b in zip(conv_grads(ours), conv_grads(explicit())))

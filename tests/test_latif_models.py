"""The DenseNet/highway building blocks and the five Latif et al. models (sernoise.latif.models)."""

import subprocess
import sys

import pytest
import torch
from torch import nn

from sernoise.latif.models import (
    MODEL_LABELS,
    MODELS,
    DenseBlock,
    Highway,
    Transition,
    build_model,
    count_parameters,
)

SMALL = {"n_bins": 128, "context": 32}


@pytest.fixture(autouse=True)
def _one_thread():
    """Two threads on a busy two-core machine cost several times more than one."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _first_conv(model):
    return next(m for m in model.modules() if isinstance(m, nn.Conv2d))


def test_model_names_and_labels():
    assert MODELS == ("proposed", "densenet", "densenet_lstm", "cnn_lstm", "cnn")
    assert set(MODEL_LABELS) == set(MODELS) and MODEL_LABELS["proposed"] == "DenseNet-LSTM-Highway"


@pytest.mark.parametrize("in_channels, layers, growth", [(5, 3, 4), (48, 6, 24), (1, 1, 1)])
def test_dense_block_concatenates_input_and_every_layer(in_channels, layers, growth):
    torch.manual_seed(0)
    block = DenseBlock(in_channels, layers=layers, growth=growth)
    x = torch.randn(2, in_channels, 6, 5)
    y = block(x)
    assert y.shape == (2, in_channels + layers * growth, 6, 5) and block.out_channels == y.shape[1]
    assert torch.equal(y[:, :in_channels], x)  # the input is carried through unchanged
    # layer k sees the input and the k earlier outputs
    assert [layer.conv.in_channels for layer in block.layers] == [in_channels + k * growth for k in range(layers)]


def test_transition_compresses_and_halves_the_map():
    y = Transition(10, 5)(torch.randn(2, 10, 8, 7))
    assert y.shape == (2, 5, 4, 3)


def test_highway_output_is_the_gated_mix():
    torch.manual_seed(1)
    layer = Highway(16)
    x = torch.randn(12, 16)
    gate = layer.gate(x)
    assert gate.shape == x.shape
    assert torch.all((gate > 0) & (gate < 1))
    assert gate.mean() < 0.5  # negative gate bias: layers start close to carrying their input
    assert torch.allclose(layer(x), gate * layer.transform(x) + (1 - gate) * x, atol=1e-6)
    # a gate forced shut carries the input; forced open it transforms
    with torch.no_grad():
        layer.gate_linear.bias.fill_(-50.0)
    assert torch.allclose(layer(x), x, atol=1e-6)
    with torch.no_grad():
        layer.gate_linear.bias.fill_(50.0)
    assert torch.allclose(layer(x), layer.transform(x), atol=1e-6)


@pytest.mark.parametrize("name", MODELS)
def test_output_shape_and_gradient_reaches_the_first_layer(name):
    model = build_model(name, 4, seed=0, **SMALL)
    x = torch.randn(3, SMALL["context"], SMALL["n_bins"])
    logits = model(x)
    assert logits.shape == (3, 4)
    nn.functional.cross_entropy(logits, torch.tensor([0, 1, 3])).backward()
    grad = _first_conv(model).weight.grad
    assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(x), model(x))  # no dropout at evaluation


def test_default_segment_shape():
    model = build_model("proposed", 4, seed=0)
    assert model(torch.randn(2, 256, 128)).shape == (2, 4)


def test_same_seed_same_initial_weights():
    for name in ("proposed", "cnn"):
        a, b = build_model(name, 4, seed=7, **SMALL), build_model(name, 4, seed=7, **SMALL)
        c = build_model(name, 4, seed=8, **SMALL)
        assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))
        assert not all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), c.state_dict().values()))


def test_seeded_build_leaves_the_global_rng_alone():
    torch.manual_seed(3)
    expected = torch.rand(3)
    torch.manual_seed(3)
    build_model("cnn_lstm", 4, seed=11, **SMALL)
    assert torch.equal(torch.rand(3), expected)


def test_parameter_counts_follow_the_architecture():
    counts = {name: count_parameters(build_model(name, 4, seed=0)) for name in MODELS}
    assert counts["densenet_lstm"] > counts["densenet"]  # the LSTM on 1408-wide steps outweighs the pooling
    assert counts["proposed"] > counts["densenet_lstm"]  # G = 24 and the highway layers


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match="unknown Latif model 'resnet'.*proposed"):
        build_model("resnet", 4)
    with pytest.raises(ValueError, match="context and n_bins >= 16"):
        build_model("densenet", 4, context=8)
    with pytest.raises(ValueError, match="n_classes"):
        build_model("cnn", 0)
    cnn = build_model("cnn", 4, **SMALL)
    with pytest.raises(ValueError, match=r"CNNModel expects segments \(batch, 32, 128\)"):
        cnn(torch.randn(2, 64, 128))
    with pytest.raises(ValueError, match="expects segments"):
        build_model("proposed", 4, **SMALL)(torch.randn(2, 32, 64))


def test_lstm_models_accept_any_number_of_frames():
    model = build_model("densenet_lstm", 3, seed=0, **SMALL)
    assert model(torch.randn(2, 48, 128)).shape == (2, 3)


@pytest.mark.parametrize("name", MODELS)
def test_a_model_learns_a_separable_toy_task(name):
    """Class 0 has energy in the low bins, class 1 in the high bins: 20 Adam steps must separate them."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(32, 16, 32, generator=gen)
    y = torch.arange(32) % 2
    x[y == 0, :, :8] += 2.0
    x[y == 1, :, 24:] += 2.0
    model = build_model(name, 2, seed=0, n_bins=32, context=16)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(20):
        optimiser.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert losses[-1] < 0.1 < losses[0]
    model.eval()  # running BN statistics after only 20 steps: most, not necessarily all, must be right
    with torch.no_grad():
        assert (model(x).argmax(dim=1) == y).float().mean() >= 0.9


def test_throughput_benchmark_runs(repo_root):
    """Smoke test: benchmarks/latif_throughput.py times one model and prints its table row."""
    proc = subprocess.run(
        [sys.executable, str(repo_root / "benchmarks" / "latif_throughput.py"), "--models", "cnn", "--steps", "1",
         "--warmup", "0", "--batch", "2"],
        capture_output=True, text=True, timeout=120, cwd=repo_root,
    )
    assert proc.returncode == 0, proc.stderr
    (row,) = [line for line in proc.stdout.splitlines() if line.startswith("CNN ")]
    assert row.split()[1] == f"{count_parameters(build_model('cnn', 4)):,}" and row.split()[-1] == "-"

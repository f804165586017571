"""The Classifier contract, checked for every built-in model: output shapes at 3x32x32 (CIFAR)
and 1x28x28 (Fashion-MNIST), forward_all consistency, channels_last, bf16 autocast, and that an
few SGD steps on a fixed batch lower the loss."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ait import models
from ait_testutils import one_torch_thread

# (expected feature_dim, spatial size of the feature map at 32x32, at 28x28) for each built-in
# model; tests/conftest.py may register extra test models, which are not checked here.
GEOMETRY = {
    "mobilenetv2": (1280, 4, 4),
    "resnet20": (64, 8, 7),
    "resnet32": (64, 8, 7),
    "resnet44": (64, 8, 7),
    "resnet56": (64, 8, 7),
    "resnet110": (64, 8, 7),
    "wrn16_4": (256, 8, 7),
    "wrn16_8": (512, 8, 7),
    "wrn28_10": (640, 8, 7),
    "wrn40_2": (128, 8, 7),
}
ALL = sorted(GEOMETRY)


_CACHE: dict[tuple[str, int], models.Classifier] = {}


@pytest.fixture(autouse=True, scope="module")
def _one_thread_and_model_cache():
    with one_torch_thread():
        yield
    _CACHE.clear()  # WRN-28-10 alone is ~150 MB; don't hold it for the rest of the session


def _model(name: str, in_channels: int) -> models.Classifier:
    if (name, in_channels) not in _CACHE:
        _CACHE[name, in_channels] = _build_calibrated(name, in_channels)
    return _CACHE[name, in_channels]


def _build_calibrated(name: str, in_channels: int) -> models.Classifier:
    """A model in eval mode with BN running statistics set from one batch.

    Uncalibrated (running mean 0, var 1) eval-mode activations at initialisation explode with
    depth (~1e8 at the end of ResNet-110) or vanish (MobileNetV2), which would make the numeric
    checks below meaningless. Cached so the large models are built once; tests that change a
    model work on a copy.
    """
    torch.manual_seed(0)
    model = models.create(name, num_classes=10, in_channels=in_channels)
    side = 32 if in_channels == 3 else 28
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative average: after one batch, running stats = batch stats
    with torch.no_grad():
        model.train()(_input((in_channels, side, side), seed=99, batch=8))
    for bn in bns:
        bn.momentum = 0.1
    return model.eval()


def _input(shape, seed=0, batch=2):
    return torch.randn(batch, *shape, generator=torch.Generator().manual_seed(seed))


def test_geometry_table_covers_builtin_models():
    assert set(ALL) <= set(models.available())
    assert len(ALL) == 10


@pytest.mark.parametrize("shape", [(3, 32, 32), (1, 28, 28)], ids=["3x32x32", "1x28x28"])
@pytest.mark.parametrize("name", ALL)
def test_forward_shapes_and_consistency(name, shape):
    feature_dim, side32, side28 = GEOMETRY[name]
    side = side32 if shape[1] == 32 else side28
    model = _model(name, shape[0])
    assert model.feature_dim == feature_dim
    x = _input(shape)
    with torch.no_grad():
        out = model.forward_all(x)
        logits = model(x)
    assert isinstance(out, models.ModelOutputs)
    assert out.feature_map.shape == (2, feature_dim, side, side)
    assert out.feature.shape == (2, feature_dim)
    assert out.logits.shape == (2, 10)
    assert logits.shape == (2, 10)
    for t in out:
        assert torch.isfinite(t).all()
    # The trunk ends after its final BN + ReLU(6), so the feature map is non-negative.
    assert (out.feature_map >= 0).all()
    torch.testing.assert_close(out.feature, out.feature_map.mean(dim=(2, 3)))
    torch.testing.assert_close(out.logits, model.head(out.feature))
    torch.testing.assert_close(logits, out.logits)


@pytest.mark.parametrize("name", ALL)
def test_channels_last_matches_contiguous(name):
    model = _model(name, 3)
    x = _input((3, 32, 32), seed=1)
    with torch.no_grad():
        expected = model.forward_all(x)
        cl_model = copy.deepcopy(model).to(memory_format=torch.channels_last)
        got = cl_model.forward_all(x.contiguous(memory_format=torch.channels_last))
    # Different memory layouts change the float summation order, hence the loose tolerance.
    torch.testing.assert_close(got.feature_map, expected.feature_map, rtol=1e-3, atol=1e-4)
    torch.testing.assert_close(got.logits, expected.logits, rtol=1e-3, atol=1e-4)
    assert got.feature_map.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("name", ALL)
def test_bf16_autocast_forward_is_finite(name):
    model = _model(name, 1)
    x = _input((1, 28, 28), seed=2)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = model.forward_all(x)
    assert out.logits.shape == (2, 10)
    assert out.logits.dtype == torch.bfloat16  # the head ran under autocast
    for t in out:
        assert torch.isfinite(t.float()).all()


@pytest.mark.parametrize("name", ["resnet20", "mobilenetv2"])
def test_sgd_steps_reduce_loss_on_fixed_batch(name):
    torch.manual_seed(0)
    model = models.create(name, num_classes=10).train()
    x = _input((3, 32, 32), seed=3, batch=8)
    y = torch.arange(8) % 10
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)

    def loss_on_batch() -> float:
        # Train-mode BN (batch statistics) so before/after differ only by the weight updates,
        # not by the running statistics, which a few steps barely move.
        with torch.no_grad():
            return F.cross_entropy(model(x), y).item()

    before = loss_on_batch()
    for _ in range(5):
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        for p in model.parameters():
            assert p.grad is not None and torch.isfinite(p.grad).all()
        optimizer.step()
    after = loss_on_batch()
    assert torch.isfinite(torch.tensor(after))
    assert after < 0.9 * before, (before, after)

"""ImageNet ResNet-18/50: torchvision's parameter counts, shapes, init options, one training step."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
import torchvision

from ait import models
from ait.models.imagenet_resnet import Bottleneck, ImageNetBasicBlock, ImageNetResNet
from ait_testutils import one_torch_thread

FEATURE_DIM = {"resnet18": 512, "resnet50": 2048}


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    with one_torch_thread():
        yield


def _count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name", sorted(FEATURE_DIM))
def test_parameter_count_matches_torchvision(name):
    n, expected = _count(models.create(name, num_classes=1000)), _count(getattr(torchvision.models, name)())
    print(f"{name}: {n:,} parameters (torchvision: {expected:,})")
    assert n == expected


@pytest.mark.parametrize("name", sorted(FEATURE_DIM))
def test_forward_all_shapes_at_64px(name):
    torch.manual_seed(0)
    model = models.create(name, num_classes=7).eval()
    assert isinstance(model, ImageNetResNet)
    assert model.feature_dim == FEATURE_DIM[name] and model.num_classes == 7
    with torch.no_grad():
        out = model.forward_all(torch.randn(2, 3, 64, 64))
        logits = model(torch.randn(1, 3, 64, 64))
    f = FEATURE_DIM[name]
    assert out.feature_map.shape == (2, f, 2, 2)
    assert out.feature.shape == (2, f)
    assert out.logits.shape == (2, 7)
    assert torch.allclose(out.feature, out.feature_map.mean(dim=(2, 3)))
    assert logits.shape == (1, 7)
    assert torch.isfinite(out.logits).all()


def test_architecture_layout():
    r18, r50 = models.resnet18(10), models.resnet50(10)
    assert [len(s) for s in (r18.layer1, r18.layer2, r18.layer3, r18.layer4)] == [2, 2, 2, 2]
    assert [len(s) for s in (r50.layer1, r50.layer2, r50.layer3, r50.layer4)] == [3, 4, 6, 3]
    assert all(isinstance(b, ImageNetBasicBlock) for b in r18.layer1)
    assert all(isinstance(b, Bottleneck) for b in r50.layer1)
    assert r18.conv1.kernel_size == (7, 7) and r18.conv1.stride == (2, 2)
    # v1.5: the stride sits on the 3x3 conv of the first bottleneck of a stage.
    first = r50.layer2[0]
    assert first.conv1.stride == (1, 1) and first.conv2.stride == (2, 2)
    assert first.downsample is not None and r50.layer2[1].downsample is None
    # layer1 of ResNet-50 changes the width 64 -> 256, so it has a projection too.
    assert r50.layer1[0].downsample is not None and r18.layer1[0].downsample is None


def test_in_channels_and_zero_init_residual():
    gray = models.create("resnet18", num_classes=5, in_channels=1)
    assert gray.conv1.in_channels == 1
    assert _count(gray) == _count(models.create("resnet18", 5)) - 2 * 64 * 7 * 7
    default = models.resnet18(5)
    assert all(b.bn2.weight.eq(1).all() for b in default.layer1)
    zero = models.resnet50(5, zero_init_residual=True)
    for stage in (zero.layer1, zero.layer2, zero.layer3, zero.layer4):
        for b in stage:
            assert b.bn3.weight.eq(0).all() and b.bn2.weight.eq(1).all()
    with pytest.raises(ValueError, match="num_classes"):
        models.create("resnet50", num_classes=0)


def test_one_sgd_step_lowers_the_loss():
    torch.manual_seed(0)
    model = models.create("resnet18", num_classes=4).train()
    x, y = torch.randn(4, 3, 64, 64), torch.tensor([0, 1, 2, 3])
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    before = F.cross_entropy(model(x), y)
    opt.zero_grad()
    before.backward()
    opt.step()
    after = F.cross_entropy(model(x), y)
    assert after.item() < before.item()

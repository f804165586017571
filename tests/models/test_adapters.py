"""forward_all for models from outside the zoo: a user's own nn.Module, timm's and torchvision's."""

import copy

import pytest
import torch
from torch import nn

from ait import models
from ait.models.adapters import HookedClassifier, as_classifier, weights_target


def plain_cnn(num_classes=10, in_channels=3):
    """A classifier that knows nothing of ait: conv stage, adaptive pool, flatten, linear head."""
    return nn.Sequential(
        nn.Conv2d(in_channels, 8, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, num_classes),
    )


def test_hooked_classifier_reads_head_input_and_pool_input_of_the_models_own_pass():
    torch.manual_seed(0)
    model = plain_cnn()
    net = as_classifier(model)
    assert isinstance(net, HookedClassifier) and net.head_name == "4" and net.trunk_name == "input of 2"
    x = torch.randn(3, 3, 16, 16)
    out = net.forward_all(x)
    assert torch.equal(out.logits, model(x))
    assert out.feature_map.shape == (3, 8, 16, 16)
    assert torch.allclose(out.feature, out.feature_map.mean(dim=(2, 3)))
    assert torch.equal(net(x), out.logits)
    assert net._seen == {}  # no activations are kept between passes


def test_gradients_flow_through_every_layer_the_hooks_read():
    net = as_classifier(plain_cnn())
    out = net.forward_all(torch.randn(2, 3, 8, 8))
    (out.feature_map.sum() + out.feature.sum()).backward()
    assert net.model[0].weight.grad is not None and net.model[0].weight.grad.abs().sum() > 0


def test_a_deep_copy_hooks_into_the_copy():
    net = as_classifier(plain_cnn())
    twin = copy.deepcopy(net)
    with torch.no_grad():
        twin.model[0].weight.mul_(2)
    x = torch.randn(2, 3, 8, 8)
    assert not torch.allclose(twin.forward_all(x).feature_map, net.forward_all(x).feature_map)
    assert torch.equal(twin.forward_all(x).logits, twin.model(x))


def test_a_model_with_forward_all_is_used_as_it_is():
    zoo = models.create("resnet20", num_classes=10)
    assert as_classifier(zoo) is zoo
    assert weights_target(zoo) == (zoo, "head")
    hooked = as_classifier(plain_cnn())
    assert weights_target(hooked) == (hooked.model, "4")


def test_a_factory_result_that_is_not_a_module_is_refused():
    with pytest.raises(models.ModelError, match="not a torch.nn.Module"):
        as_classifier("resnet")


def test_a_model_without_linear_head_gives_the_pooled_map_as_feature():
    model = nn.Sequential(nn.Conv2d(3, 5, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    out = as_classifier(model).forward_all(torch.randn(2, 3, 8, 8))
    assert out.feature.shape == (2, 5) and out.logits.shape == (2, 5)

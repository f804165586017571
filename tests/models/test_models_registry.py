"""ait.models registry: names, lookup errors, argument validation, registration."""

from __future__ import annotations

import numpy as np
import pytest
from torch import nn

from ait import models
from ait.models import registry

# The models ait.models registers itself.
EXPECTED = [
    "mobilenetv2",
    "resnet110",
    "resnet20",
    "resnet32",
    "resnet44",
    "resnet56",
    "wrn16_4",
    "wrn16_8",
    "wrn28_10",
    "wrn40_2",
]


def test_available_is_sorted_and_has_the_builtin_models():
    names = models.available()
    assert names == sorted(names)
    # tests/conftest.py may register extra test models, so only require ours to be present.
    assert set(EXPECTED) <= set(names)


def test_reexports():
    from ait.models.base import Classifier, ModelOutputs

    assert models.Classifier is Classifier
    assert models.ModelOutputs is ModelOutputs


@pytest.mark.parametrize("name", ["resnet20", "mobilenetv2", "wrn16_4"])
@pytest.mark.parametrize("num_classes,in_channels", [(10, 3), (100, 3), (7, 1)])
def test_create_sets_interface_attributes(name, num_classes, in_channels):
    model = models.create(name, num_classes=num_classes, in_channels=in_channels)
    assert isinstance(model, models.Classifier)
    assert model.num_classes == num_classes
    assert isinstance(model.head, nn.Linear)
    assert model.head.in_features == model.feature_dim
    assert model.head.out_features == num_classes
    first_conv = next(m for m in model.modules() if isinstance(m, nn.Conv2d))
    assert first_conv.in_channels == in_channels


def test_unknown_name_lists_models_and_suggests_closest():
    with pytest.raises(ValueError) as info:
        models.create("resnet-20", num_classes=10)
    message = str(info.value)
    assert "'resnet-20'" in message
    assert "Did you mean 'resnet20'?" in message
    for name in EXPECTED:
        assert name in message


def test_unknown_name_without_close_match_still_lists_models():
    with pytest.raises(ValueError, match="Available models: mobilenetv2, resnet110") as info:
        models.create("vgg16_bn_xyz", num_classes=10)
    assert "Did you mean" not in str(info.value)


@pytest.mark.parametrize("bad", [0, -3, 2.5, True, "10", None])
def test_invalid_num_classes(bad):
    with pytest.raises(ValueError, match=rf"num_classes must be an integer >= 1, got {bad!r}"):
        models.create("resnet20", num_classes=bad)


@pytest.mark.parametrize("bad", [0, -1, 3.0])
def test_invalid_in_channels(bad):
    with pytest.raises(ValueError, match=rf"in_channels must be an integer >= 1, got {bad!r}"):
        models.create("resnet20", num_classes=10, in_channels=bad)


def test_numpy_integers_are_accepted():
    model = models.create("resnet20", num_classes=np.int64(5), in_channels=np.int32(1))
    assert model.num_classes == 5 and type(model.num_classes) is int


def test_register_adds_and_rejects_duplicates(monkeypatch):
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))  # keep the real one clean
    calls = []

    @models.register("tiny_test_model")
    def factory(num_classes, in_channels):
        calls.append((num_classes, in_channels))
        return models.cifar_resnet(8, num_classes, in_channels)

    assert "tiny_test_model" in models.available()
    model = models.create("tiny_test_model", 4, in_channels=2)
    assert calls == [(4, 2)] and model.num_classes == 4
    with pytest.raises(ValueError, match="already registered"):
        models.register("resnet20")(factory)

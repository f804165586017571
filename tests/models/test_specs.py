"""Network names: the forms strategy.networks accepts, read without importing anything."""

import pytest

from ait.models import ModelError
from ait.models.specs import parse


@pytest.mark.parametrize(
    "text,kind,name,module",
    [
        ("resnet20", "registered", "resnet20", None),
        ("timm:resnet18", "timm", "resnet18", None),
        ("timm:vit_base_patch16_224.augreg_in21k", "timm", "vit_base_patch16_224.augreg_in21k", None),
        ("torchvision:mobilenet_v3_small", "torchvision", "mobilenet_v3_small", None),
        ("my_models.nets:small_cnn", "factory", "small_cnn", "my_models.nets"),
        ("nets:make", "factory", "make", "nets"),
    ],
)
def test_each_form_is_recognised(text, kind, name, module):
    spec = parse(text)
    assert (spec.kind, spec.name, spec.module, spec.text) == (kind, name, module, text)


@pytest.mark.parametrize("text", ["", "  ", "timm:", "torchvision:res net", "my-models:make", "pkg.mod:", "a:b:c", 3])
def test_other_text_is_refused_with_the_forms(text):
    with pytest.raises(ModelError, match="expected"):
        parse(text)

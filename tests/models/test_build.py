"""Building any network name, and the one check pass that names what does not fit."""

import pytest
import torch
from torch import nn

from ait import models


def test_the_check_pass_touches_no_batch_statistics_and_restores_the_mode():
    net = models.create("resnet20", num_classes=10).train()
    before = [b.clone() for b in net.buffers()]
    models.check_outputs(net, "resnet20", 10, (3, 32, 32), "feature_map")
    assert net.training
    assert all(torch.equal(a, b) for a, b in zip(before, net.buffers()))


def test_a_shape_the_model_cannot_take_is_named():
    net = models.create("torchvision:resnet18", num_classes=10)  # made for RGB
    with pytest.raises(models.ModelError, match=r"'torchvision:resnet18' cannot take images of shape \(1, 28, 28\).*"):
        models.check_outputs(net, "torchvision:resnet18", 10, (1, 28, 28))


def test_a_layer_the_model_cannot_give_is_named():
    net = models.create("timm:test_vit", num_classes=10, kwargs={"img_size": 32})
    with pytest.raises(
        models.ModelError, match="consistency.layer=feature_map: model 'timm:test_vit' gives no spatial"
    ):
        models.check_outputs(net, "timm:test_vit", 10, (3, 32, 32), "feature_map")
    models.check_outputs(net, "timm:test_vit", 10, (3, 32, 32), "feature")


def test_logits_of_another_class_count_are_named():
    class Fixed(nn.Module):
        def forward_all(self, x):
            return models.ModelOutputs(None, x.flatten(1)[:, :4], x.flatten(1)[:, :3])

    with pytest.raises(models.ModelError, match=r"gives logits of shape \(2, 3\); expected \(2, 10\)"):
        models.check_outputs(Fixed(), "fixed", 10, (3, 8, 8))


def test_zoo_models_take_no_keyword_arguments():
    with pytest.raises(models.ModelError, match="takes no argument 'drop_path_rate'"):
        models.create("resnet20", num_classes=10, kwargs={"drop_path_rate": 0.1})


def test_sources_say_where_each_kind_comes_from():
    import timm
    import torchvision

    assert models.source("resnet20") == {"kind": "zoo", "module": "ait.models.cifar_resnet"}
    assert models.source("timm:resnet18") == {"kind": "timm", "version": timm.__version__}
    assert models.source("torchvision:resnet18") == {"kind": "torchvision", "version": torchvision.__version__}
    assert models.source("pkg.mod:make") == {"kind": "factory", "module": "pkg.mod"}

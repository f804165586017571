"""Image classifiers for augmentation-invariant training, looked up by name.

Every model is a :class:`Classifier`: a trunk ending in a spatial feature map, global average
pooling and a linear head, with :meth:`Classifier.forward_all` exposing all three::

    >>> import torch
    >>> from ait import models
    >>> model = models.create("resnet20", num_classes=10)  # 3x32x32 inputs
    >>> tuple(model(torch.zeros(2, 3, 32, 32)).shape)
    (2, 10)
    >>> model = models.create("wrn16_4", num_classes=10, in_channels=1)  # e.g. Fashion-MNIST 1x28x28
    >>> model = models.create("resnet50", num_classes=1000)  # ImageNet 3x224x224
    >>> models.available()  # doctest: +ELLIPSIS
    ['mobilenetv2', 'resnet110', ..., 'wrn40_2']
"""

from ait.models.base import Classifier, ModelOutputs

# Imported for their side effect of registering their factories (and re-exported for direct use).
from ait.models.cifar_resnet import CifarResNet, cifar_resnet  # noqa: E402
from ait.models.imagenet_resnet import ImageNetResNet, resnet18, resnet50  # noqa: E402
from ait.models.mobilenetv2 import MobileNetV2  # noqa: E402
from ait.models.registry import available, create, register
from ait.models.wide_resnet import WideResNet, wide_resnet  # noqa: E402

__all__ = [
    "Classifier",
    "CifarResNet",
    "ImageNetResNet",
    "MobileNetV2",
    "ModelOutputs",
    "WideResNet",
    "available",
    "cifar_resnet",
    "create",
    "register",
    "resnet18",
    "resnet50",
    "wide_resnet",
]

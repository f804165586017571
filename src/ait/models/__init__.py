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
    >>> [name for name in models.available() if models.source(name)["kind"] == "zoo"]  # doctest: +ELLIPSIS
    ['mobilenetv2', 'resnet110', ..., 'wrn40_2']

Outside the zoo, ``create`` takes ``timm:NAME`` and ``torchvision:NAME`` (optional extras), an
import path ``package.module:function`` to a factory of your own, and any name registered with
:func:`register` or by an installed plugin's entry point (group ``ait.models``); all of them get
``forward_all`` through :mod:`ait.models.adapters`.
"""

from ait.models import split_bn
from ait.models.base import Classifier, ModelOutputs
from ait.models.build import check_name, check_outputs, create, source

# Imported for their side effect of registering their factories (and re-exported for direct use).
from ait.models.cifar_resnet import CifarResNet, cifar_resnet  # noqa: E402
from ait.models.errors import ModelError
from ait.models.imagenet_resnet import ImageNetResNet, resnet18, resnet50  # noqa: E402
from ait.models.mobilenetv2 import MobileNetV2  # noqa: E402
from ait.models.outside import import_plugins
from ait.models.registry import available, register
from ait.models.weights import load_weights
from ait.models.wide_resnet import WideResNet, wide_resnet  # noqa: E402

__all__ = [
    "Classifier",
    "CifarResNet",
    "ImageNetResNet",
    "MobileNetV2",
    "ModelError",
    "ModelOutputs",
    "WideResNet",
    "available",
    "check_name",
    "check_outputs",
    "cifar_resnet",
    "create",
    "import_plugins",
    "load_weights",
    "register",
    "resnet18",
    "resnet50",
    "source",
    "split_bn",
    "wide_resnet",
]

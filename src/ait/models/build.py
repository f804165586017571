"""Every network name, built: the zoo's and registered models, timm's, torchvision's, import paths.

    >>> import torch
    >>> from ait import models
    >>> net = models.create("resnet20", num_classes=10)
    >>> models.check_outputs(net, "resnet20", 10, (3, 32, 32), layer="feature_map")  # (N, F, h, w) map
    >>> models.source("resnet20")["kind"]
    'zoo'

:func:`create` builds the architecture (initial weights are :mod:`ait.models.weights`' business);
:func:`check_outputs` runs it once on zeros of the data's shape, so that a model that cannot take
the data, or cannot give the consistency layer asked for, fails before training with its name;
:func:`check_name` is what the config checks, without building or importing a user's module.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ait.models import outside, registry
from ait.models.adapters import as_classifier
from ait.models.errors import ModelError
from ait.models.specs import LIBRARIES, ModelSpec, parse


def check_name(text: str) -> ModelSpec:
    """The parsed name, after checking that it can be built here: a registered or plugin name, a
    timm / torchvision name with the library installed; an import path is checked for its form
    only (importing it is building it). ModelError otherwise."""
    spec = parse(text)
    if spec.kind == "registered" and not registry.known(spec.name):
        raise registry.unknown_model(spec.name)
    if spec.kind in LIBRARIES:
        outside.check_library_name(spec)
    return spec


def create(
    name: str,
    num_classes: int,
    in_channels: int = 3,
    *,
    kwargs: dict[str, Any] | None = None,
    pretrained: bool = False,
    allow_import: bool = True,
) -> nn.Module:
    """Build model ``name`` for ``num_classes`` classes and ``in_channels`` input channels: an
    ``nn.Module`` with ``forward_all`` (x (N, C, H, W) -> ModelOutputs).

    kwargs: keyword arguments of its factory (timm: drop_path_rate, img_size, ...). pretrained:
    timm's weights, from the local cache only. allow_import: an import-path model may import its
    module (False when the name comes from a run directory: the module must be imported already).
    Raises ModelError naming the model for anything that does not fit.
    """
    num_classes = registry.check_positive_int("num_classes", num_classes)
    in_channels = registry.check_positive_int("in_channels", in_channels)
    kwargs = dict(kwargs or {})
    spec = parse(name)
    if pretrained and spec.kind != "timm":
        raise ModelError(f"model {name!r}: pretrained weights come from timm only; give a weights file instead")
    if spec.kind == "timm":
        return outside.build_timm(spec, num_classes, in_channels, kwargs, pretrained)
    if spec.kind == "torchvision":
        return outside.build_torchvision(spec, num_classes, in_channels, kwargs)
    if spec.kind == "factory":
        return outside.build_factory(spec, num_classes, in_channels, kwargs, allow_import)
    factory = registry.factory(spec.name)
    return as_classifier(outside.call_factory(factory, name, num_classes, in_channels, kwargs))


def source(name: str) -> dict[str, Any]:
    """Where model ``name`` comes from, as a run records it in env.json: {"kind": "zoo" | "module" |
    "entry_point" | "timm" | "torchvision" | "factory", "module": ..., "version": ...}."""
    spec = parse(name)
    if spec.kind in LIBRARIES:
        return {"kind": spec.kind, "version": outside.version(spec.kind)}
    if spec.kind == "factory":
        return {"kind": "factory", "module": spec.module}
    return registry.source_of(spec.name)


def check_outputs(
    net: nn.Module, name: str, num_classes: int, input_shape: tuple[int, ...], layer: str = "logits"
) -> None:
    """One forward pass of two zero images of ``input_shape`` (C, H, W), in eval mode and without
    gradients (no batch statistics or random numbers are touched). ModelError when the model cannot
    take them, gives logits of another shape, or cannot give ``layer``."""
    was_training = net.training
    parameter = next(net.parameters(), None)
    device = parameter.device if parameter is not None else torch.device("cpu")
    try:
        net.eval()
        with torch.no_grad():
            out = net.forward_all(torch.zeros(2, *input_shape, device=device))
    except ModelError:
        raise
    except Exception as err:  # a shape the model does not take: its own message, first line
        raise ModelError(
            f"model {name!r} cannot take images of shape {tuple(input_shape)} (C, H, W): {type(err).__name__}: "
            f"{str(err).splitlines()[0][:240] if str(err) else ''} (models.{name}.kwargs may set its input size, "
            "e.g. img_size for a ViT)"
        ) from None
    finally:
        net.train(was_training)
    if tuple(out.logits.shape) != (2, num_classes):
        raise ModelError(f"model {name!r} gives logits of shape {tuple(out.logits.shape)}; expected (2, {num_classes})")
    if getattr(out, layer) is None:
        what = "spatial feature map (N, F, h, w)" if layer == "feature_map" else "pooled feature (N, F)"
        raise ModelError(
            f"consistency.layer={layer}: model {name!r} gives no {what}; use consistency.layer=logits"
            + (" or feature" if out.feature is not None else "")
        )

"""Models from outside the zoo: timm's and torchvision's (optional extras), and import-path factories.

Each builder returns an ``nn.Module`` with ``forward_all`` (:mod:`ait.models.adapters`) for
``num_classes`` classes and ``in_channels`` input channels. Nothing here downloads: timm's
``pretrained=True`` reads the local Hugging Face cache only, and says where it looked otherwise.
"""

from __future__ import annotations

import contextlib
import difflib
import importlib
import inspect
import os
import sys
from types import ModuleType
from typing import Any

from torch import nn

from ait.models.adapters import HookedClassifier, TimmClassifier, as_classifier
from ait.models.errors import ModelError
from ait.models.specs import ModelSpec

INSTALL = {"timm": "pip install 'ait-train[timm]'", "torchvision": "pip install 'ait-train[torchvision]'"}


def library(name: str) -> ModuleType:
    """``import timm`` / ``import torchvision``, or a ModelError saying how to install it."""
    try:
        return importlib.import_module(name)
    except ImportError:
        raise ModelError(f"{name}:NAME models need {name}, which is not installed: {INSTALL[name]}") from None
    except Exception as err:  # e.g. a torchvision built for another torch: its operators fail to load
        import torch

        raise ModelError(
            f"{name} is installed but does not import beside torch {torch.__version__} "
            f"({type(err).__name__}: {str(err).splitlines()[0][:200]}); install a matching pair"
        ) from None


def library_models(lib: str) -> list[str]:
    """The classification model names of timm or torchvision."""
    module = library(lib)
    if lib == "timm":
        return list(module.list_models())
    return list(module.models.list_models(module=module.models))


def check_library_name(spec: ModelSpec) -> None:
    """ModelError unless the library is installed and knows ``spec.name`` (closest name suggested)."""
    module = library(spec.kind)
    ok = module.is_model(spec.name) if spec.kind == "timm" else spec.name in library_models(spec.kind)
    if not ok:
        close = difflib.get_close_matches(spec.name, library_models(spec.kind), n=3)
        hint = f"; close names: {', '.join(close)}" if close else ""
        raise ModelError(f"{spec.text!r}: {spec.kind} has no classification model {spec.name!r}{hint}")


def version(lib: str) -> str:
    return str(getattr(library(lib), "__version__", "?"))


def build_timm(spec: ModelSpec, num_classes: int, in_channels: int, kwargs: dict, pretrained: bool) -> nn.Module:
    timm = library("timm")
    try:
        with _offline() if pretrained else contextlib.nullcontext():
            model = timm.create_model(
                spec.name, pretrained=pretrained, num_classes=num_classes, in_chans=in_channels, **kwargs
            )
    except Exception as err:
        # The hub's cache misses are OSErrors (LocalEntryNotFoundError: also a ValueError in hub 0.x).
        if not (pretrained and isinstance(err, OSError)):
            raise _kwargs_error(spec, kwargs, err) from None
        home = os.environ.get("HF_HOME", "~/.cache/huggingface")
        raise ModelError(
            f"{spec.text!r}: pretrained weights are not in the local cache ({home}/hub; "
            f"{type(err).__name__}: {str(err).splitlines()[0][:160]}). Nothing is downloaded here: copy "
            "the model's folder into that cache, or give a weights file (models.NAME.weights)"
        ) from None
    return TimmClassifier(model)


@contextlib.contextmanager
def _offline():
    """Hugging Face Hub reads its cache only, whatever the environment says, for the block."""
    try:
        from huggingface_hub import constants
    except ImportError:  # timm without the hub: its pretrained loading fails on its own, clearly
        yield
        return
    saved = constants.HF_HUB_OFFLINE
    constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = saved


def _kwargs_error(spec: ModelSpec, kwargs: dict, err: Exception) -> ModelError:
    """What a constructor raised, for a keyword argument it does not take (TypeError) or a value it
    refuses (timm and torchvision assert or raise ValueError: output_stride=7, ...)."""
    said = str(err).splitlines()[0][:200] if str(err) else "no message"
    return ModelError(f"{spec.text!r} cannot be built with kwargs {kwargs} ({type(err).__name__}: {said})")


def build_torchvision(spec: ModelSpec, num_classes: int, in_channels: int, kwargs: dict) -> nn.Module:
    tv = library("torchvision")
    try:
        model = tv.models.get_model(spec.name, weights=None, num_classes=num_classes, **kwargs)
    except Exception as err:
        raise _kwargs_error(spec, kwargs, err) from None
    if getattr(model, "aux_logits", False):  # GoogLeNet, Inception v3: a tuple of outputs in training
        raise ModelError(
            f"{spec.text!r} returns auxiliary logits in training, which a branch does not take: set "
            f"models.{spec.text}.kwargs.aux_logits=false"
        )
    if in_channels != 3:
        _replace_first_conv(model, in_channels, spec.text)
    return HookedClassifier(model)


def _replace_first_conv(model: nn.Module, in_channels: int, text: str) -> None:
    """torchvision's builders take no channel count: a new first convolution for ``in_channels``."""
    name = next((n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)), None)
    if name is None:
        raise ModelError(f"{text!r} has no convolution to take {in_channels}-channel images")
    old: nn.Conv2d = model.get_submodule(name)
    new = nn.Conv2d(
        in_channels,
        old.out_channels,
        old.kernel_size,
        old.stride,
        old.padding,
        old.dilation,
        old.groups,
        old.bias is not None,
        old.padding_mode,
    )
    parent, _, attr = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, attr, new)


def build_factory(spec: ModelSpec, num_classes: int, in_channels: int, kwargs: dict, allow_import: bool) -> nn.Module:
    """``module:function`` called with num_classes (and in_channels, when it takes it) and kwargs."""
    function = _factory_function(spec, allow_import)
    return as_classifier(call_factory(function, spec.text, num_classes, in_channels, kwargs))


def _factory_function(spec: ModelSpec, allow_import: bool):
    module = sys.modules.get(spec.module)
    if module is None and not allow_import:
        raise ModelError(
            f"model {spec.text!r} is made by module {spec.module!r}, which ait does not import from a run "
            f"directory on its own (a received run must not run code): name it with --import {spec.module}"
        )
    if module is None:
        module = import_module(spec.module, f"model {spec.text!r}")
    function = getattr(module, spec.name, None)
    if not callable(function):
        raise ModelError(f"model {spec.text!r}: module {spec.module!r} has no function {spec.name!r}")
    return function


def import_module(name: str, what: str) -> ModuleType:
    """Import a user's module (the working directory first on the path, as ``python -m`` does)."""
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        return importlib.import_module(name)
    except Exception as err:
        raise ModelError(f"{what}: cannot import module {name!r} ({type(err).__name__}: {err})") from None


def call_factory(function, text: str, num_classes: int, in_channels: int, kwargs: dict[str, Any]) -> nn.Module:
    """``function(num_classes=..., [in_channels=...,] **kwargs)``, with errors naming the model."""
    try:
        parameters = inspect.signature(function).parameters
    except (TypeError, ValueError):
        parameters = {}
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    arguments = {"num_classes": num_classes, **kwargs}
    if "in_channels" in parameters or takes_any:
        arguments["in_channels"] = in_channels
    unknown = [k for k in arguments if parameters and not takes_any and k not in parameters]
    if unknown:
        raise ModelError(
            f"model {text!r}: its factory takes no argument {', '.join(map(repr, unknown))} "
            f"(it takes: {', '.join(parameters) or 'nothing'}); a factory takes num_classes, and in_channels "
            "when the data may not be RGB"
        )
    return function(**arguments)


def import_plugins(modules: list[str]) -> list[ModuleType]:
    """Import the modules of ``--import`` (a module name, or the path of a ``.py`` file): the models
    they register become known to this process."""
    imported = []
    for name in modules:
        if name.endswith(".py"):
            path = os.path.abspath(os.path.expanduser(name))
            if not os.path.isfile(path):
                raise ModelError(f"--import {name}: no such file")
            folder, stem = os.path.dirname(path), os.path.basename(path)[:-3]
            if folder not in sys.path:
                sys.path.insert(0, folder)
            name = stem
        imported.append(sys.modules.get(name) or import_module(name, f"--import {name}"))
    return imported

"""What a network name in ``strategy.networks`` says, read without importing anything of the user's.

>>> from ait.models.specs import parse
>>> parse("resnet20").kind, parse("timm:resnet18").kind, parse("torchvision:resnet18").name
('registered', 'timm', 'resnet18')
>>> spec = parse("my_models.nets:small_cnn")  # an import path to a factory function
>>> spec.kind, spec.module, spec.name
('factory', 'my_models.nets', 'small_cnn')
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ait.models.errors import ModelError

LIBRARIES = ("timm", "torchvision")  # NAME of LIBRARY:NAME, built by ait.models.outside
_IDENTIFIER = r"[A-Za-z_][A-Za-z0-9_]*"
_MODULE = re.compile(rf"{_IDENTIFIER}(\.{_IDENTIFIER})*")
_LIBRARY_MODEL = re.compile(r"[A-Za-z0-9_.\-]+")  # timm names hold dots (vit_base_patch16_224.augreg_in21k)


@dataclass(frozen=True)
class ModelSpec:
    """One network name, parsed. kind: "registered" (the zoo, a registered or plugin name), "timm",
    "torchvision" or "factory" (``module:function``, a function returning an ``nn.Module``)."""

    text: str
    kind: str
    name: str
    module: str | None = None


def parse(text: str) -> ModelSpec:
    """The parsed form of ``text``; ModelError saying the accepted forms when it fits none."""
    forms = "a registered name (ait models), timm:NAME, torchvision:NAME or package.module:function"
    if not isinstance(text, str) or not text.strip():
        raise ModelError(f"model name {text!r}: expected {forms}")
    if ":" not in text:
        return ModelSpec(text, "registered", text)
    prefix, _, name = text.partition(":")
    if prefix in LIBRARIES:
        if not _LIBRARY_MODEL.fullmatch(name):
            raise ModelError(f"model name {text!r}: expected {prefix}:NAME with a {prefix} model name")
        return ModelSpec(text, prefix, name)
    if _MODULE.fullmatch(prefix) and re.fullmatch(_IDENTIFIER, name):
        return ModelSpec(text, "factory", name, module=prefix)
    raise ModelError(f"model name {text!r}: expected {forms}")

"""Name -> factory registry for the models in :mod:`ait.models`.

Factories have the signature ``f(num_classes: int, in_channels: int) -> Classifier``. The model
modules register themselves when :mod:`ait.models` imports them; nothing else is global.
"""

from __future__ import annotations

import difflib
import operator
from collections.abc import Callable

from ait.models.base import Classifier

Factory = Callable[[int, int], Classifier]

_REGISTRY: dict[str, Factory] = {}


def check_positive_int(name: str, value: object) -> int:
    """Return ``value`` as an int, or raise ValueError naming it if it is not an integer >= 1.

    ``operator.index`` accepts numpy integers but rejects floats; bools are rejected explicitly
    because ``True`` would otherwise silently mean 1.
    """
    try:
        if isinstance(value, bool):
            raise TypeError
        as_int = operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}") from None
    if as_int < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return as_int


def register(name: str) -> Callable[[Factory], Factory]:
    """Decorator registering ``factory(num_classes, in_channels) -> Classifier`` under ``name``."""

    def decorator(factory: Factory) -> Factory:
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is already registered")
        _REGISTRY[name] = factory
        return factory

    return decorator


def available() -> list[str]:
    """Sorted names of all registered models."""
    return sorted(_REGISTRY)


def create(name: str, num_classes: int, in_channels: int = 3) -> Classifier:
    """Build model ``name`` for ``num_classes`` classes and ``in_channels`` input channels.

    Raises ValueError for an unknown name (listing the registered ones) or a bad count.
    """
    if name not in _REGISTRY:
        close = difflib.get_close_matches(str(name), _REGISTRY, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"unknown model {name!r}.{hint} Available models: {', '.join(available())}")
    num_classes = check_positive_int("num_classes", num_classes)
    in_channels = check_positive_int("in_channels", in_channels)
    return _REGISTRY[name](num_classes, in_channels)

"""Name -> factory registry: the zoo of :mod:`ait.models`, models registered from Python, and the
entry points of installed plugins.

Factories have the signature ``f(num_classes, in_channels, **kwargs) -> nn.Module``; the zoo's take
no keyword arguments and return a :class:`Classifier`. The zoo's modules register themselves when
:mod:`ait.models` imports them. A user's module registers its own with :func:`register` (``ait
train --import MODULE`` imports it); an installed package declares them as entry points of the
group ``ait.models`` (``name = "package.module:factory"``), loaded the first time a name is asked for.
"""

from __future__ import annotations

import difflib
import operator
from collections.abc import Callable
from importlib import metadata
from typing import Any

from torch import nn

from ait.models.errors import ModelError

Factory = Callable[..., nn.Module]
ENTRY_POINT_GROUP = "ait.models"
ZOO_PACKAGE = "ait.models."

_REGISTRY: dict[str, Factory] = {}
_SOURCES: dict[str, dict[str, Any]] = {}  # name -> where its factory came from (see :func:`source_of`)


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
    """Decorator registering ``factory(num_classes, in_channels, **kwargs) -> nn.Module`` under ``name``.

    A name may not contain ":" (that form names timm, torchvision and import-path models).
    """
    if ":" in name or not name:
        raise ValueError(f"model name {name!r}: expected a non-empty name without ':'")

    def decorator(factory: Factory) -> Factory:
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is already registered")
        _REGISTRY[name] = factory
        module = getattr(factory, "__module__", None) or "?"
        kind = "zoo" if module.startswith(ZOO_PACKAGE) else "module"
        _SOURCES.setdefault(name, {"kind": kind, "module": module})
        return factory

    return decorator


def entry_points() -> dict[str, metadata.EntryPoint]:
    """The installed plugins' models: entry point name -> entry point (not loaded)."""
    return {ep.name: ep for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)}


def available() -> list[str]:
    """Sorted names of all registered models, and of the installed plugins' models."""
    return sorted(set(_REGISTRY) | set(entry_points()))


def known(name: str) -> bool:
    """Whether ``name`` is registered or an installed plugin's model (nothing is imported)."""
    return name in _REGISTRY or name in entry_points()


def factory(name: str) -> Factory:
    """The factory of a registered name, loading an installed plugin's entry point when needed.

    Raises ModelError for an unknown name, listing the registered ones and saying how plugins load.
    """
    if name not in _REGISTRY:
        found = entry_points().get(name)
        if found is None:
            raise unknown_model(name)
        try:
            loaded = found.load()
        except Exception as err:  # an installed plugin that fails to import: say which
            raise ModelError(f"model {name!r}: its entry point {found.value!r} failed to load ({err})") from None
        dist = getattr(found, "dist", None)
        _SOURCES[name] = {
            "kind": "entry_point",
            "module": found.value.split(":")[0],
            "distribution": f"{dist.name} {dist.version}" if dist is not None else None,
        }
        register(name)(loaded)
    return _REGISTRY[name]


def unknown_model(name: str, hint: str = "") -> ModelError:
    """The error for a name nobody registered: the closest name, the list, and how plugins load."""
    close = difflib.get_close_matches(str(name), available(), n=1)
    did_you_mean = f" Did you mean {close[0]!r}?" if close else ""
    how = hint or (
        "A model of your own module needs --import MODULE (it calls ait.models.register); timm and "
        "torchvision models are written timm:NAME and torchvision:NAME"
    )
    return ModelError(f"unknown model {name!r}.{did_you_mean} Available models: {', '.join(available())}. {how}")


def source_of(name: str) -> dict[str, Any]:
    """Where a registered name's factory came from: {"kind": "zoo" | "module" | "entry_point",
    "module": ..., ["distribution": ...]} (recorded in a run's env.json)."""
    if name not in _SOURCES and name in (found := entry_points()):  # a plugin's, not loaded yet
        return {"kind": "entry_point", "module": found[name].value.split(":")[0]}
    return dict(_SOURCES.get(name, {"kind": "unknown"}))

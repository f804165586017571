"""What a run tells the outside while it trains: a small callback interface, and the names of
``train.loggers``.

The run loop (:class:`ait.engine.run.RunLoop`) calls, on rank 0 only::

    on_run_start(info)            once, after a resumed run is put back (info.step: the global step
                                  it continues from, 0 for a new run)
    on_step(step, scalars)        every train.log_every global steps: {"lr", "loss/ce/net0", ...,
                                  "loss/consistency", "grad_norm/net0", ..., "images_per_s"}
    on_epoch_end(epoch, record)   after each epoch, with its metrics.jsonl record
    on_run_end(summary)           after the last epoch, with summary.json's content
    on_run_error(error, stopped)  when the run ends by an exception instead: stopped is True for a
                                  signal that let it save its checkpoint (it can be resumed), False
                                  for a failure
    close()                       however the run ends (a signal, an error): flush, release

A logger is a callback (the built-in ones, :data:`BUILTIN`, are :mod:`ait.engine.loggers`); a
user's own is registered under a name from a module given with ``--import`` and then named in
``train.loggers`` like the built-in ones::

    >>> from ait.callbacks import Callback, names, register
    >>> @register("print_loss")
    ... class PrintLoss(Callback):
    ...     def on_step(self, step, scalars):
    ...         print(step, round(scalars["loss/consistency"], 3))
    >>> "print_loss" in names()
    True
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class RunInfo:
    """What a callback knows of its run when it starts."""

    run_dir: Path
    name: str
    config: dict[str, Any]  # the resolved config, plain data (the loggers' hyperparameters)
    step: int  # the global step the run starts or continues from
    steps_per_epoch: int
    resumed: bool


class Callback:
    """Override what you need; every method does nothing by default."""

    def on_run_start(self, info: RunInfo) -> None:
        pass

    def on_step(self, step: int, scalars: dict[str, float]) -> None:
        pass

    def on_epoch_end(self, epoch: int, record: dict[str, Any]) -> None:
        pass

    def on_run_end(self, summary: dict[str, Any]) -> None:
        pass

    def on_run_error(self, error: BaseException, stopped: bool) -> None:
        pass

    def close(self) -> None:
        pass


class Callbacks(Callback):
    """Several callbacks called in order as one."""

    def __init__(self, callbacks: list[Callback]):
        self.callbacks = list(callbacks)

    def on_run_start(self, info: RunInfo) -> None:
        for c in self.callbacks:
            c.on_run_start(info)

    def on_step(self, step: int, scalars: dict[str, float]) -> None:
        for c in self.callbacks:
            c.on_step(step, scalars)

    def on_epoch_end(self, epoch: int, record: dict[str, Any]) -> None:
        for c in self.callbacks:
            c.on_epoch_end(epoch, record)

    def on_run_end(self, summary: dict[str, Any]) -> None:
        for c in self.callbacks:
            c.on_run_end(summary)

    def on_run_error(self, error: BaseException, stopped: bool) -> None:
        """Tell every callback, even when one fails (its tracker unreachable, say); the first
        error is raised after all were told."""
        self._each(lambda c: c.on_run_error(error, stopped))

    def close(self) -> None:
        """Close every callback, even when one fails (the others' runs would be left open); the first
        error is raised after all were tried."""
        self._each(lambda c: c.close())

    def _each(self, call: Callable[[Callback], None]) -> None:
        errors = []
        for c in self.callbacks:
            try:
                call(c)
            except Exception as err:
                errors.append(err)
        if errors:
            raise errors[0]


Factory = Callable[[], Callback]
# The built-in loggers (ait.engine.loggers) and the module each needs, checked as the config is read.
BUILTIN: dict[str, str | None] = {"csv": None, "tensorboard": "tensorboard", "mlflow": "mlflow", "wandb": "wandb"}
_REGISTRY: dict[str, Factory] = {}


def register(name: str) -> Callable[[Factory], Factory]:
    """Register a callback class (or a function returning one) under ``name`` for ``train.loggers``."""

    def decorator(factory: Factory) -> Factory:
        if name in _REGISTRY or name in BUILTIN:
            raise ValueError(f"logger {name!r} is already registered")
        _REGISTRY[name] = factory
        return factory

    return decorator


def names() -> list[str]:
    """The names ``train.loggers`` accepts: the built-in ones and those registered."""
    return sorted(set(BUILTIN) | set(_REGISTRY))


def registered(name: str) -> Factory | None:
    """The factory a user registered under ``name``, or None."""
    return _REGISTRY.get(name)


def check(name: str) -> None:
    """ValueError unless ``name`` is known and what it needs is installed (nothing is imported)."""
    if name not in names():
        raise ValueError(
            f"{name!r} is not a logger: one of {', '.join(names())}, or a name your module registers "
            "with ait.callbacks.register (given with --import MODULE)"
        )
    module = BUILTIN.get(name)
    if module and importlib.util.find_spec(module) is None:
        raise ValueError(f"the {name} logger needs {module}, which is not installed: pip install 'ait-train[{name}]'")

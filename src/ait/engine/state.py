"""The training state: what a checkpoint holds and a resumed run restores.

:class:`TrainingState` gathers every network, optimiser and schedule with the :class:`Position`
(epoch, next step and the partial sums of the epoch in progress). ``state_dict()`` is plain data
and tensors, loadable with ``torch.load(weights_only=True)``, and ``load_state_dict()`` puts a run
back exactly where ``state_dict()`` was taken, RNG states included (the views of a step are seeded
by (seed, epoch, step) on their own, see :func:`step_seed`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ait.config import Config
from ait.engine.checkpoint import capture_rng, restore_rng


def step_seed(seed: int, epoch: int, step: int) -> int:
    """Seed of the view generator for one step: a function of (seed, epoch, step) alone, so any
    step can be replayed without the generator's history (exact resume, reproducible views).
    Wrapped below 2**63 for the generator; seeds under about 9 million never wrap."""
    return ((seed * 1_000_003 + epoch) * 1_000_033 + step) % (1 << 63)


def _times(values: torch.Tensor, counts: list[int]) -> torch.Tensor:
    """(num_networks,) ``values`` each times its network's count (no host-to-device copy)."""
    if len(set(counts)) == 1:
        return values * counts[0]
    return torch.stack([v * k for v, k in zip(values, counts)])


@dataclass
class Position:
    """Where the run is, and the partial sums of the epoch in progress."""

    epoch: int = 0  # epoch in progress (0-based)
    step: int = 0  # next step of that epoch
    ce_sum: torch.Tensor | None = None  # (num_networks,) sum over steps of CE x images of the step
    consistency_sum: torch.Tensor | None = None  # () sum over steps of the AiLoss x network 0's images
    correct: torch.Tensor | None = None  # (num_networks,) correct training images
    seen: list[int] = field(default_factory=list)  # training images per network
    epoch_lr: float = 0.0  # learning rate at the start of the epoch (logged)
    epoch_seconds: float = 0.0  # training seconds spent in this epoch so far
    train_seconds: float = 0.0  # over the whole run
    wall_seconds: float = 0.0
    images_trained: int = 0
    nonfinite_skips: int = 0
    epoch_steps: int = 0  # steps of this epoch that trained (skipped non-finite steps do not)
    # The sums are weighted by the step's images, so that a short last batch counts for what it
    # holds; False only for an epoch resumed from a checkpoint written before (plain sums of means).
    sums_per_image: bool = True

    def add(self, stats) -> None:
        """Add one step's :class:`ait.engine.trainer.StepStats` to the epoch's sums."""
        self.epoch_steps += 1
        ce, consistency = stats.ce, stats.consistency
        if self.sums_per_image:
            ce, consistency = _times(ce, stats.images), consistency * stats.images[0]
        if self.ce_sum is None:
            self.ce_sum, self.consistency_sum, self.correct = ce, consistency, stats.correct
            self.seen = list(stats.images)
        else:
            self.ce_sum = self.ce_sum + ce
            self.consistency_sum = self.consistency_sum + consistency
            self.correct = self.correct + stats.correct
            self.seen = [a + b for a, b in zip(self.seen, stats.images)]

    def next_epoch(self) -> None:
        self.epoch, self.step = self.epoch + 1, 0
        self.ce_sum = self.consistency_sum = self.correct = None
        self.seen, self.epoch_seconds, self.epoch_steps = [], 0.0, 0
        self.sums_per_image = True

    def train_means(self, ctx, seen: list[float], device: torch.device) -> tuple[list[float], float]:
        """(CE of each network, consistency): the epoch's means over its training images, summed
        over the ranks of ``ctx`` (an :class:`ait.engine.distributed.DistContext`). seen: the images
        each network trained on, over all ranks; a rank that trained no step adds zeros."""
        zeros = torch.zeros(len(seen), device=device)
        ce = ctx.all_reduce_sum(self.ce_sum if self.ce_sum is not None else zeros)
        cons = ctx.all_reduce_sum(self.consistency_sum if self.consistency_sum is not None else zeros.sum())
        if self.sums_per_image:
            images = [max(k, 1.0) for k in seen]
            return [c / k for c, k in zip(ce.tolist(), images)], cons.item() / images[0]
        steps = max(self.epoch_steps, 1) * ctx.world_size  # the old form: a mean of per-step means
        return [c / steps for c in ce.tolist()], cons.item() / steps

    def to_state(self) -> dict[str, Any]:
        return {k: (v.detach().cpu() if isinstance(v, torch.Tensor) else v) for k, v in self.__dict__.items()}

    @classmethod
    def from_state(cls, state: dict[str, Any], device: torch.device) -> Position:
        # A checkpoint without the key summed per-step means: go on so until its epoch ends.
        pos = cls(**{"sums_per_image": state.get("ce_sum") is None, **state})
        for name in ("ce_sum", "consistency_sum", "correct"):
            value = getattr(pos, name)
            if value is not None:
                setattr(pos, name, value.to(device))
        return pos


@dataclass
class TrainingState:
    """Every network with its optimiser and schedule, and the position of the run."""

    config: Config
    networks: list[nn.Module]
    optimizers: list[torch.optim.Optimizer]
    schedulers: list[torch.optim.lr_scheduler.LRScheduler]
    position: Position
    device: torch.device

    @property
    def lr(self) -> float:
        """The learning rate the next step uses (of network 0)."""
        return float(self.optimizers[0].param_groups[0]["lr"])  # a tensor under train.cuda_graphs

    def state_dict(self) -> dict[str, Any]:
        """The checkpoint's content: tensors and plain data only, RNG states captured now."""
        return {
            "config": self.config.to_dict(),
            "networks": [net.state_dict() for net in self.networks],
            "optimizers": [_plain_param_groups(opt.state_dict()) for opt in self.optimizers],
            "schedulers": [_plain_last_lr(sched.state_dict()) for sched in self.schedulers],
            "position": self.position.to_state(),
            "rng": capture_rng(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict` (as read by :func:`ait.engine.checkpoint.load_checkpoint`)."""
        for net, weights in zip(self.networks, state["networks"]):
            net.load_state_dict(weights)
        for opt, saved in zip(self.optimizers, state["optimizers"]):
            opt.load_state_dict(saved)
        for sched, saved in zip(self.schedulers, state["schedulers"]):
            sched.load_state_dict(saved)
        restore_rng(state["rng"])
        self.position = Position.from_state(state["position"], self.device)


def _plain_param_groups(state: dict[str, Any]) -> dict[str, Any]:
    """An optimiser's state with its groups as an eager run keeps them: a captured step
    (:mod:`ait.engine.graphs`) holds the learning rate as a device tensor and marks AdamW's groups
    capturable; a checkpoint holds a plain number and the default, so it resumes alike either way."""
    groups = [
        {**g, "lr": float(g["lr"]), **({"capturable": False} if "capturable" in g else {})}
        for g in state["param_groups"]
    ]
    return {**state, "param_groups": groups}


def _plain_last_lr(state: dict[str, Any]) -> dict[str, Any]:
    """A schedule's state with its last learning rates as floats (tensors under a captured step)."""
    return {**state, "_last_lr": [float(v) for v in state["_last_lr"]]} if "_last_lr" in state else state

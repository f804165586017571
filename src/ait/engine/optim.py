"""Optimisers and learning-rate schedules, one per network.

Schedules are functions of the global step (not the epoch) so that warm-up and cosine are smooth,
and so that a resumed run lands on exactly the same learning rate.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ait.config import OptimConfig


def default_weight_decay(model_name: str, optimizer: str = "sgd") -> float:
    """The paper's weight decay for SGD: 5e-4 for wide ResNets (as in Zagoruyko & Komodakis), 1e-4
    otherwise; AdamW's decoupled decay 0.05, as in the DeiT and ConvNeXt recipes."""
    if optimizer == "adamw":
        return 0.05
    return 5e-4 if model_name.startswith("wrn") else 1e-4


def lr_factor(cfg: OptimConfig, step: int, steps_per_epoch: int, epochs: int) -> float:
    """Multiplier of the base learning rate at a global step (0-based)."""
    epoch = step / steps_per_epoch  # fractional epoch
    if cfg.schedule == "onecycle":
        return onecycle_factor(step, steps_per_epoch * epochs)
    if cfg.warmup_epochs > 0 and epoch < cfg.warmup_epochs:
        # Linear from 0.1 to 1 over the warm-up, then the schedule proper.
        return 0.1 + 0.9 * epoch / cfg.warmup_epochs
    if cfg.schedule == "cosine":
        span = max(epochs - cfg.warmup_epochs, 1e-9)
        progress = min(max(epoch - cfg.warmup_epochs, 0.0) / span, 1.0)
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    # "step": divide by 1/gamma at each milestone epoch, counted in whole epochs as in the paper.
    passed = sum(1 for m in cfg.milestones if step // steps_per_epoch >= m)
    return cfg.gamma**passed


# PyTorch's OneCycleLR defaults: from lr / 25 up to lr over the first 30% of the steps, then down
# to lr / (25 * 1e4), both halves cosine.
ONECYCLE_PCT, ONECYCLE_DIV, ONECYCLE_FINAL_DIV = 0.3, 25.0, 1e4


def onecycle_factor(step: int, total: int) -> float:
    """The one-cycle multiplier of the base learning rate at global ``step`` of ``total``, with
    OneCycleLR's phase boundaries (the peak at step 0.3 * total - 1, the end at total - 1)."""
    start, end = 1.0 / ONECYCLE_DIV, 1.0 / (ONECYCLE_DIV * ONECYCLE_FINAL_DIV)
    peak = ONECYCLE_PCT * total - 1
    if step <= peak:
        lo, hi, t = start, 1.0, step / peak if peak > 0 else 1.0
    else:
        lo, hi, t = 1.0, end, min((step - peak) / max(total - 1 - peak, 1e-9), 1.0)
    return hi + (lo - hi) * 0.5 * (1.0 + math.cos(math.pi * t))


def build_optimizer(model: nn.Module, model_name: str, cfg: OptimConfig) -> torch.optim.Optimizer:
    """SGD (the paper's) or AdamW, with PyTorch's fused kernel where the device has one (CPU, CUDA):
    it takes the guard's flag and skips a non-finite update on the device (:func:`masked_step`).
    Its results equal the default implementation's up to the rounding of a fused multiply-add
    (tests/engine/test_optim.py)."""
    wd = cfg.weight_decay if cfg.weight_decay is not None else default_weight_decay(model_name, cfg.name)
    fused = next(model.parameters()).device.type in ("cpu", "cuda")
    if cfg.name == "adamw":
        betas = (cfg.betas[0], cfg.betas[1])
        return torch.optim.AdamW(model.parameters(), lr=cfg.lr, betas=betas, weight_decay=wd, fused=fused)
    kwargs = dict(lr=cfg.lr, momentum=cfg.momentum, weight_decay=wd, nesterov=cfg.nesterov)
    optimizer = torch.optim.SGD(model.parameters(), fused=fused, **kwargs)
    if cfg.momentum > 0:
        # The fused kernel makes a missing buffer with torch.empty on the first step, even a skipped
        # one; a zero buffer gives the same first step (buf = 0 * momentum + grad) and stays defined.
        for p in model.parameters():
            optimizer.state[p]["momentum_buffer"] = torch.zeros_like(p, memory_format=torch.preserve_format)
    return optimizer


def masked_step(optimizer: torch.optim.Optimizer, skip: torch.Tensor) -> None:
    """``optimizer.step()`` unless ``skip`` (a float tensor on the device, 1.0 to skip) is set.

    Fused optimizers take the flag as GradScaler's ``found_inf``: the kernel leaves parameters and
    momentum untouched on the device, with no host branch (so the step can be captured in a CUDA
    graph). Others read the flag on the host.
    """
    if getattr(optimizer, "_step_supports_amp_scaling", False):
        optimizer.grad_scale, optimizer.found_inf = None, skip
        optimizer.step()
    elif not bool(skip):
        optimizer.step()


def schedule_notes(cfg: OptimConfig, epochs: int) -> list[str]:
    """What to tell a user about settings the schedule does not use: a warm-up under the one-cycle
    curve, step milestones at or past the last epoch. Not refused: runs and sweeps made before set
    them (a preset's warm-up under a grid over schedules; a paper preset's [80, 120] in a run
    shortened to a few epochs), and what they computed is the schedule without them."""
    notes = []
    if cfg.schedule == "onecycle" and cfg.warmup_epochs > 0:
        notes.append(
            f"optim.warmup_epochs={cfg.warmup_epochs:g} is not used with optim.schedule=onecycle: its curve "
            f"rises from lr / {ONECYCLE_DIV:g} over the first {ONECYCLE_PCT:.0%} of the steps instead"
        )
    late = [m for m in cfg.milestones if m >= epochs]
    if cfg.schedule == "step" and late:
        notes.append(
            f"optim.milestones {', '.join(map(str, late))} {'is' if len(late) == 1 else 'are'} not reached in "
            f"train.epochs={epochs}: the learning rate steps down {len(cfg.milestones) - len(late)} "
            f"of {len(cfg.milestones)} times"
        )
    return notes


def build_scheduler(
    optimizer: torch.optim.Optimizer, cfg: OptimConfig, steps_per_epoch: int, epochs: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """Stepped once per training step."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(cfg, step, steps_per_epoch, epochs))

"""The branch trainer: one training step for any strategy.

A strategy is a list of branches (network index, view index); :mod:`ait.strategies` holds the
table of what each strategy trains, and docs/design.md how the pieces fit. Each step:

    uint8 batch (B, C, H, W) on the device
      -> one augmented, normalised float batch per view       (ait.views, per-sample random)
         [or uint8 views (B, V, C, H, W) made by a data loader: normalised only]
      -> each network runs once on the concatenation of its views (timm's trick: one forward)
      -> CE per network (mean over the images of its CE branches)  +  lambda * AiLoss over all branches
      -> one backward, every optimiser steps

CE is averaged over all the images of a network's CE branches in the step, as in the authors'
code: for AIT that is the mean of the per-view CEs, and for DML / multi-AIT each network contributes
its own CE. The paper's eq. 3 writes the sum over the V views; the mean is (1/V)(sum + V lambda AiLoss),
so under SGD a step here is eq. 3's with V x lambda, at 1/V of the learning rate and V x the weight
decay (AIT's lambda = 1: eq. 3's 2); under AdamW the loss scale hardly matters. Not only a rescaled
rate: keep that in mind beside the paper's lambda sweep (Figure 4).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from ait import views as views_lib
from ait.config import ConsistencyConfig
from ait.engine.optim import masked_step
from ait.losses import AiLoss
from ait.runtime.precision import Precision


class NonFiniteLossError(FloatingPointError):
    """A training loss or gradient was NaN or infinite; the step changed nothing (it may be skipped)."""


class NonFiniteWeightsError(FloatingPointError):
    """An update from finite gradients overflowed the weights (a learning rate far too large): the
    weights are lost, so the run cannot skip the step and go on."""


@dataclass
class StepStats:
    """Detached per-step quantities, summed over an epoch without a host sync per step."""

    ce: torch.Tensor  # (num_networks,) CE of each network
    consistency: torch.Tensor  # () AiLoss value (before lambda)
    correct: torch.Tensor  # (num_networks,) correctly classified training images
    images: list[int]  # images each network saw in the step
    ok: torch.Tensor | None = None  # () bool: the loss and every gradient were finite, so the update was applied
    grads_finite: torch.Tensor | None = None  # (num_networks,) bool: each network's gradients were finite
    buffers_finite: torch.Tensor | None = None  # (num_networks,) bool: its BatchNorm statistics after the forward
    weights_finite: torch.Tensor | None = None  # (num_networks,) bool: each network's weights after the step
    grad_norm: torch.Tensor | None = None  # (num_networks,) L2 norm of each network's gradients, when asked


class BranchTrainer:
    """Trains ``networks`` on ``branches`` with CE plus lambda x consistency at one layer.

    Args:
        networks: the models (``ait.models.Classifier``), already on the device.
        recipes: one ``ait.views.Recipe`` per view index; None when the views come ready-made from
            a data loader (then every batch is uint8 views (B, V, C, H, W)).
        branches: (network index, view index) pairs, e.g. [(0, 0), (0, 1)] for AIT.
        ce_branches: the branches whose outputs get CE (:meth:`ait.strategies.Strategy.ce_branches`);
            default all of them.
        consistency: loss weight, layer, metric.
        precision: device, autocast dtype and memory format.
        mean, std: per-channel normalisation of the [0, 1] images.
        forwards: per network, a callable x -> ModelOutputs used for training (DDP wrappers);
            default ``net.forward_all``.
        network_names: for error messages (default "net0", "net1", ...).
        guard: check the loss and the gradients and apply the update only when all are finite
            (:meth:`step`); off only to measure what the guard costs (benchmarks/bench_train.py).
        label_smoothing: of the cross-entropy (train.label_smoothing; 0 is the paper's plain CE).
    """

    def __init__(
        self,
        networks: Sequence[nn.Module],
        recipes: Sequence[views_lib.Recipe] | None,
        branches: Sequence[tuple[int, int]],
        consistency: ConsistencyConfig,
        precision: Precision,
        mean: Sequence[float],
        std: Sequence[float],
        forwards: Sequence | None = None,
        network_names: Sequence[str] | None = None,
        ce_branches: Sequence[tuple[int, int]] | None = None,
        guard: bool = True,
        label_smoothing: float = 0.0,
    ):
        self.networks = list(networks)
        self.label_smoothing = float(label_smoothing)
        self.forwards = list(forwards) if forwards is not None else [net.forward_all for net in self.networks]
        self.names = (
            [f"net{k} ({name})" for k, name in enumerate(network_names)]
            if network_names
            else [f"net{k}" for k in range(len(self.networks))]
        )
        self.recipes = list(recipes) if recipes is not None else None
        self.premade = self.recipes is None  # views come from the data loader exactly when there are no recipes
        self.branches = [tuple(b) for b in branches]
        self.precision = precision
        self.weight = float(consistency.weight)
        self.layer = consistency.layer
        self.ailoss = AiLoss(consistency.metric, consistency.detach_target, consistency.temperature)
        device = precision.device
        self.mean = torch.tensor(mean, dtype=torch.float32, device=device).view(1, -1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32, device=device).view(1, -1, 1, 1)
        # Which views each network sees, in branch order; which views are used at all.
        self.views_of = [[v for (n, v) in self.branches if n == k] for k in range(len(self.networks))]
        self.used_views = sorted({v for _, v in self.branches})
        # Per network, the positions (among its views) of the chunks that get CE; None: all of them.
        ce = {tuple(b) for b in ce_branches} if ce_branches is not None else set(self.branches)
        self.ce_chunks = [
            None if all((k, v) in ce for v in vs) else [j for j, v in enumerate(vs) if (k, v) in ce]
            for k, vs in enumerate(self.views_of)
        ]
        if any(not vs for vs in self.views_of):
            raise ValueError(f"every network needs at least one branch, got branches {self.branches}")
        self.guard = guard
        # A network may need each view's batch to be a multiple of some number (K stacked seeds:
        # ait.models.stacked), else its samples would be assigned to the wrong seed.
        self.batch_multiple = math.lcm(*(int(getattr(net, "batch_multiple", 1)) for net in self.networks))
        # Buffers (BatchNorm statistics) move in the forward pass: a copy taken before it restores
        # them when the step turns out non-finite, so a skipped step leaves no trace.
        self._buffers = [b for net in self.networks for b in net.buffers()]
        self._saved_buffers = [b.detach().clone() for b in self._buffers] if guard else []

    @property
    def compares_branches(self) -> bool:
        return len(self.branches) >= 2

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) float in [0, 1] -> normalised network input in the run's memory format."""
        return self.precision.prepare_input((x - self.mean) / self.std)

    def prepare_eval(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 (N, C, H, W) on the device -> normalised float input, no augmentation."""
        return self.normalise(images.float().div_(255.0))

    def make_views(self, images: torch.Tensor, generator: torch.Generator | None) -> dict[int, torch.Tensor]:
        """uint8 (B, C, H, W) -> {view index: normalised augmented float batch (B, C, H, W)}."""
        return self._make_views(images, generator)[0]

    def _make_views(self, images: torch.Tensor, generator: torch.Generator | None):
        """Views per index, and {tuple of view indices: (len * B, C, H, W) tensor holding them in order}.

        :func:`ait.views.make_views` makes them (one augmentation call per recipe), view-major, so a
        network fed all of them (AIT) gets one tensor without a concatenation.
        """
        if images.dim() != 4:
            raise ValueError(f"images must be uint8 (B, C, H, W) to augment, got {images.dtype} {tuple(images.shape)}")
        made = views_lib.make_views(images, [self.recipes[v] for v in self.used_views], generator)
        b = images.shape[0]
        flat = self.normalise(made.flatten(0, 1))  # (len(used) * B, C, H, W)
        views = {v: flat[j * b : (j + 1) * b] for j, v in enumerate(self.used_views)}
        return views, {tuple(self.used_views): flat}

    def _premade_views(self, views: torch.Tensor):
        """uint8 views (B, V, C, H, W), already augmented -> the same pair as :meth:`_make_views`.

        The used views are converted in one go, view-major, so a network fed all of them (AIT) gets
        one (len * B, C, H, W) tensor without a concatenation.
        """
        if views.dim() != 5 or views.shape[1] <= self.used_views[-1]:
            raise ValueError(
                "this trainer's views come from the data loader (it has no augmentation recipes): "
                f"pass uint8 views (B, V, C, H, W) with V > {self.used_views[-1]}, "
                f"got {views.dtype} {tuple(views.shape)}"
            )
        b = views.shape[0]
        used = self.used_views
        # view by view (a list index would copy an index tensor from the host: not in a CUDA graph)
        x = torch.stack([views[:, v] for v in used]) if used != list(range(views.shape[1])) else views.transpose(0, 1)
        x = x.reshape(len(used) * b, *views.shape[2:])  # view-major (len(used) * B, C, H, W)
        out = self.normalise(x.float().div_(255.0))
        per_view = {v: out[j * b : (j + 1) * b] for j, v in enumerate(used)}
        return per_view, {tuple(used): out}

    def loss(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        generator: torch.Generator | None = None,
        shard: slice | None = None,
    ):
        """Forward all branches; returns (total loss, StepStats). labels int64 (B,).

        images: uint8 (B, C, H, W) for the trainer to augment with ``generator``; or, for a trainer
        without recipes, uint8 views (B, V, C, H, W) already augmented by the data loader (view v
        of the strategy at ``images[:, v]``), only scaled to [0, 1], normalised and put in the run's
        memory format. With ``shard`` (distributed training), ``images`` is the whole global batch:
        its views are drawn for every sample, so a sample's views do not depend on the number of
        processes, and this rank trains on ``shard`` of them.
        """
        views, stacked = self._premade_views(images) if self.premade else self._make_views(images, generator)
        if shard is not None:
            views, stacked = {v: x[shard] for v, x in views.items()}, {}
            labels = labels[shard]
        if labels.shape[0] % self.batch_multiple:
            raise ValueError(
                f"a batch of {labels.shape[0]} samples per view, but the networks need a multiple of "
                f"{self.batch_multiple} (stacked seeds: the last, partial batch of an epoch needs drop_last)"
            )
        ce_terms, correct, branch_outputs = [], [], {}
        for k, forward in enumerate(self.forwards):
            vs = self.views_of[k]
            x = stacked.get(tuple(vs))
            if x is None:
                x = views[vs[0]] if len(vs) == 1 else torch.cat([views[v] for v in vs])  # (len(vs) * B, C, H, W)
            with self.precision.autocast():
                out = forward(x)
            logits = out.logits.float()  # (len(vs) * B, K)
            targets = labels.repeat(len(vs))
            ce_terms.append(self._cross_entropy(logits, labels, k))
            correct.append((logits.argmax(dim=1) == targets).sum())
            for v, chunk in zip(vs, getattr(out, self.layer).chunk(len(vs))):
                branch_outputs[(k, v)] = chunk
        ce = torch.stack(ce_terms)  # (num_networks,)
        consistency = self._consistency(branch_outputs, ce)
        total = ce.sum() + self.weight * consistency if self.weight > 0 and self.compares_branches else ce.sum()
        images_seen = [int(labels.shape[0]) * len(vs) for vs in self.views_of]
        return total, StepStats(ce.detach(), consistency.detach(), torch.stack(correct).detach(), images_seen)

    def _cross_entropy(self, logits: torch.Tensor, labels: torch.Tensor, k: int) -> torch.Tensor:
        """CE of network ``k`` over its CE branches; logits (len(views of k) * B, K), labels (B,)."""
        chunks = self.ce_chunks[k]
        if chunks is None:  # every view: one call on the whole tensor
            return F.cross_entropy(logits, labels.repeat(len(self.views_of[k])), label_smoothing=self.label_smoothing)
        per_view = logits.chunk(len(self.views_of[k]))
        chosen = torch.cat([per_view[j] for j in chunks])
        return F.cross_entropy(chosen, labels.repeat(len(chunks)), label_smoothing=self.label_smoothing)

    def _consistency(self, branch_outputs: dict, ce: torch.Tensor) -> torch.Tensor:
        """AiLoss over every branch's output at the configured layer; 0 with one branch."""
        if not self.compares_branches:
            return ce.new_zeros(())
        outs = [branch_outputs[b] for b in self.branches]
        if self.weight > 0:
            return self.ailoss(outs)
        with torch.no_grad():  # lambda = 0 (the baseline point of the Figure 4 sweep): logged, not trained
            return self.ailoss(outs)

    def step(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        optimizers: Sequence[torch.optim.Optimizer],
        schedulers: Sequence = (),
        generator: torch.Generator | None = None,
        shard: slice | None = None,
        grad_norm: bool = False,
        grads_to_none: bool = True,
    ) -> StepStats:
        """One optimisation step of every network (arguments as :meth:`loss`); every schedule steps.
        grad_norm: also measure each network's gradient norm (on the device; for the loggers).
        grads_to_none: drop the gradients before the step (else zero them in place, keeping the
        tensors a captured CUDA graph writes into).

        The guard: a flag computed on the device (fused reductions over each network's gradients
        and BatchNorm statistics, and the loss) masks the update (:func:`ait.engine.optim.masked_step`), so a step
        with a NaN or infinite loss or gradient changes no weight, momentum or BatchNorm statistic.
        The host then reads the flag (:meth:`raise_if_nonfinite`: the one sync of a step) and
        raises NonFiniteLossError naming what was not finite.
        """
        for opt in optimizers:
            opt.zero_grad(set_to_none=grads_to_none)
        stats = self.device_step(images, labels, optimizers, generator, shard, grad_norm)
        for sched in schedulers:
            sched.step()
        if self.guard:
            self.raise_if_nonfinite(stats)
        return stats

    def device_step(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        optimizers: Sequence[torch.optim.Optimizer],
        generator: torch.Generator | None = None,
        shard: slice | None = None,
        grad_norm: bool = False,
    ) -> StepStats:
        """The device work of :meth:`step`, without a host sync: forwards, backward, the guard's
        flags and the (masked) update, into gradients that were zeroed or set to None before. What
        a CUDA graph captures (:mod:`ait.engine.graphs`)."""
        for net in self.networks:
            net.train()
        if self.guard:
            self.save_buffers()
        total, stats = self.loss(images, labels, generator, shard)
        total.backward()
        if grad_norm:
            device = self.precision.device
            stats.grad_norm = torch.stack([_norm([p.grad for p in net.parameters()], device) for net in self.networks])
        if self.guard:
            skip = self.check_update(stats, total)
        for opt in optimizers:
            if self.guard:
                masked_step(opt, skip)
            else:
                opt.step()
        if self.guard:
            stats.weights_finite = self.weights_finite()
        return stats

    # The guard's parts, each on the device (benchmarks/bench_train.py --guard-only times them alone).

    def save_buffers(self) -> None:
        """Copy the BatchNorm statistics before the forward pass moves them (one fused copy).

        The copy is what :meth:`raise_if_nonfinite` restores: a loop that reads the flags less
        often than every step (inside a captured CUDA graph) must keep it until they are read."""
        if self._buffers:
            torch._foreach_copy_(self._saved_buffers, self._buffers)

    def check_update(self, stats: StepStats, total: torch.Tensor) -> torch.Tensor:
        """Flag the loss, gradients and BatchNorm statistics into ``stats``; returns the float skip
        flag (1.0: not finite) that masks the update."""
        device = self.precision.device
        grads = [_all_finite([p.grad for p in net.parameters()], device) for net in self.networks]
        stats.grads_finite = torch.stack(grads)
        stats.buffers_finite = torch.stack([_all_finite(_float_buffers(net), device) for net in self.networks])
        stats.ok = torch.isfinite(total.detach()) & stats.grads_finite.all() & stats.buffers_finite.all()
        return (~stats.ok).to(torch.float32)

    def weights_finite(self) -> torch.Tensor:
        """(num_networks,) bool: each network's weights are finite."""
        return torch.stack([_all_finite(list(net.parameters()), self.precision.device) for net in self.networks])

    def raise_if_nonfinite(self, stats: StepStats) -> None:
        """Read the step's flags (a host sync); after a non-finite step, put the BatchNorm statistics
        back and raise NonFiniteLossError naming the loss terms or networks that were not finite, or
        NonFiniteWeightsError when finite gradients made the weights overflow."""
        ok, weights_ok = torch.stack([stats.ok, stats.weights_finite.all()]).tolist()
        if not ok:
            if self._buffers:
                torch._foreach_copy_(self._buffers, self._saved_buffers)
            raise NonFiniteLossError(f"{self.describe_nonfinite(stats)}; no weights were updated")
        if not weights_ok:
            nets = [name for name, good in zip(self.names, stats.weights_finite.tolist()) if not good]
            raise NonFiniteWeightsError(
                f"the update made the weights of {', '.join(nets)} NaN or infinite although the loss and "
                "gradients were finite (the learning rate is far too large?)"
            )

    def describe_nonfinite(self, stats: StepStats) -> str:
        """Which loss terms, or else which networks' gradients, are NaN or infinite, by network name."""
        bad = [
            f"CE of {name} = {value}"
            for name, value in zip(self.names, stats.ce.tolist())
            if not torch.isfinite(torch.tensor(value))
        ]
        if not torch.isfinite(stats.consistency):
            bad.append(f"consistency ({self.layer}) = {stats.consistency.item()}")
        if bad:
            return "non-finite training loss: " + ", ".join(bad)
        for flags, what in ((stats.grads_finite, "gradients"), (stats.buffers_finite, "BatchNorm statistics")):
            if flags is not None and not bool(flags.all()):
                nets = [name for name, ok in zip(self.names, flags.tolist()) if not ok]
                return f"non-finite {what} of {', '.join(nets)} (the loss was finite)"
        return "non-finite training loss: the weighted sum overflowed"


def _float_buffers(net: nn.Module) -> list[torch.Tensor]:
    return [b for b in net.buffers() if b.is_floating_point()]


def _norm(tensors: list[torch.Tensor | None], device: torch.device) -> torch.Tensor:
    """() float32: the L2 norm of all ``tensors`` together (None entries skipped), on ``device``."""
    present = [t for t in tensors if t is not None]
    if not present:
        return torch.zeros((), device=device)
    return torch.linalg.vector_norm(torch.stack([n.float() for n in torch._foreach_norm(present)]))


def _all_finite(tensors: list[torch.Tensor | None], device: torch.device) -> torch.Tensor:
    """() bool: every value of ``tensors`` (None entries left out) is finite.

    One fused kernel: GradScaler's check (``torch._amp_foreach_non_finite_check_and_unscale_``)
    with a scale of 1, which leaves the tensors as they are (x * 1.0 == x) and sets a flag on the
    device; about 20x faster on the CPU than a max-magnitude reduction.
    """
    present = [t for t in tensors if t is not None]
    if not present:  # on the step's device, so that networks with and without such tensors stack
        return torch.ones((), dtype=torch.bool, device=device)
    found = torch.zeros((), dtype=torch.float32, device=present[0].device)
    torch._amp_foreach_non_finite_check_and_unscale_(present, found, torch.ones_like(found))
    return found == 0

"""The training step captured once in a CUDA graph and replayed (``train.cuda_graphs``).

A ResNet-32 step at 128 images is a few hundred small kernels, so from eager PyTorch the GPU
mostly waits for Python to launch them. The whole step of :class:`ait.engine.trainer.BranchTrainer`
(views, forwards, loss, backward, the guard's flags and the masked update:
:meth:`~ait.engine.trainer.BranchTrainer.device_step`) is recorded once and then replayed as one
launch, the batch copied into the captured input tensors. What a capture needs, and how it is met:

- fixed shapes: the graph serves the batch shape it was captured with; any other shape (the last,
  partial batch of an epoch) takes the eager step, which computes the same thing;
- state on the device only: the views draw from a generator registered with the graph (reseeded
  before each step as in eager mode, so a replay draws what the eager step would), the learning
  rate is a device tensor that the schedules fill in place and the fused optimisers read there,
  and the guard's flags are read after the replay (the step's one host sync, as in eager mode);
- warm-up: the first steps run eagerly on a side stream, so that lazy initialisations (cuBLAS,
  cuDNN, the autograd engine's streams) do not happen during the capture. They are real steps.

Nothing may replace a tensor the graph holds (parameters, gradients, momentum, BatchNorm
statistics, the learning rate) once it is captured: a run loads its checkpoint before its first
step, and in-place updates (the guard's restore of BatchNorm statistics) are safe.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable, Sequence
from dataclasses import fields, replace

import torch

from ait.config import Config, ConfigError
from ait.engine.trainer import BranchTrainer, StepStats

WARMUP_STEPS = 3  # eager steps before the capture (PyTorch's documented pattern uses 3)


class GraphedStep:
    """``trainer.step`` with the same arguments and results, replayed from a CUDA graph.

    Args:
        trainer: the run's trainer, its networks and optimisers on one CUDA device.
        warmup_steps: eager steps of the capture's batch shape before the capture.
    """

    def __init__(self, trainer: BranchTrainer, warmup_steps: int = WARMUP_STEPS, log=None):
        if warmup_steps < 1:  # the eager steps make what the capture may not (constants, lazy state)
            raise ValueError(f"warmup_steps: expected at least 1, got {warmup_steps}")
        self.trainer = trainer
        self.warmup_steps = warmup_steps
        self.log = log or (lambda text: print(text, file=sys.stderr))
        self.seen: dict[tuple, int] = {}  # eager steps so far of each (images shape, dtype, labels shape)
        self.shape: tuple | None = None  # the one the graph serves: the first to reach warmup_steps
        self.graph: torch.cuda.CUDAGraph | None = None
        self.inputs: tuple[torch.Tensor, torch.Tensor] | None = None  # the captured images and labels
        self.outputs: StepStats | None = None  # the captured step's statistics, rewritten by each replay
        self.generator: torch.Generator | None = None  # the one the graph draws from
        self.replays = 0

    def __call__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        optimizers: Sequence[torch.optim.Optimizer],
        schedulers: Sequence = (),
        generator: torch.Generator | None = None,
        shard: slice | None = None,
        grad_norm: bool = False,
    ) -> StepStats:
        if shard is not None:
            raise ValueError("a captured step trains one process: train.cuda_graphs is for single-device runs")
        if images.device.type != "cuda":
            raise ValueError(f"train.cuda_graphs needs the batch on a CUDA device, got {images.device}")
        shape = (tuple(images.shape), images.dtype, tuple(labels.shape))

        def eager() -> StepStats:  # once captured, the gradients stay the tensors the graph writes into
            keep = self.graph is not None
            return self.trainer.step(
                images, labels, optimizers, schedulers, generator, grad_norm=grad_norm, grads_to_none=not keep
            )

        if self.graph is None:
            # A shape is captured after its warm-up steps: the full batch, which comes every step,
            # not the partial last one a resumed run may start with.
            if self.seen.get(shape, 0) < self.warmup_steps:
                self.seen[shape] = self.seen.get(shape, 0) + 1
                return _on_side_stream(eager)
            self._capture(images, labels, optimizers, generator, shape)
        elif shape != self.shape or generator is not self.generator:
            return eager()
        return self._replay(images, labels, schedulers, grad_norm)

    def _capture(self, images, labels, optimizers, generator, shape: tuple) -> None:
        """Record the device step on the capture's own copies of the batch (nothing runs yet)."""
        for opt in optimizers:
            lr_on_device(opt, images.device)
            for group in opt.param_groups:
                if "capturable" in group:  # AdamW refuses a capture without it (fused: its step is on the device)
                    group["capturable"] = True
        self.inputs = (images.clone(), labels.clone())
        for opt in optimizers:
            opt.zero_grad(set_to_none=True)  # the backward of the capture allocates the gradients it replays into
        graph = torch.cuda.CUDAGraph()
        if generator is not None:
            with warnings.catch_warnings():  # needed before torch 2.10 or so; a deprecated no-op after
                warnings.filterwarnings("ignore", message=".*register_generator_state.*")
                graph.register_generator_state(generator)
        self.generator = generator
        # thread_local: the loader's pin-memory thread may use CUDA while this thread captures
        with torch.cuda.graph(graph, capture_error_mode="thread_local"):
            # grad_norm always: what a logging step asks for must be in the one graph (a few reductions)
            self.outputs = self.trainer.device_step(*self.inputs, optimizers, generator, grad_norm=True)
        self.graph, self.shape = graph, shape
        self.log(f"train.cuda_graphs: step captured for batches of {tuple(images.shape)}; other shapes run eagerly")

    def _replay(self, images, labels, schedulers, grad_norm: bool) -> StepStats:
        static_images, static_labels = self.inputs
        static_images.copy_(images)
        static_labels.copy_(labels)
        self.graph.replay()
        self.replays += 1
        stats = _detached_copy(self.outputs)  # the next replay rewrites the captured tensors
        if not grad_norm:
            stats.grad_norm = None
        for sched in schedulers:
            sched.step()  # fills the device learning rate the next replay reads
        if self.trainer.guard:
            self.trainer.raise_if_nonfinite(stats)
        return stats


def check_cuda_graphs(cfg: Config, device: torch.device, world_size: int) -> None:
    """ConfigError unless a run with ``train.cuda_graphs`` can capture its step: one process on a
    CUDA device (checked before anything is written)."""
    if not cfg.train.cuda_graphs:
        return
    if device.type != "cuda":
        raise ConfigError(f"train.cuda_graphs: CUDA graphs need a CUDA device, but this run trains on {device}")
    if not hasattr(torch.cuda.CUDAGraph, "register_generator_state"):  # the views draw inside the graph
        raise ConfigError(
            f"train.cuda_graphs: torch {torch.__version__} cannot capture the views' generator "
            "(CUDAGraph.register_generator_state, torch 2.4 and later); leave train.cuda_graphs off"
        )
    if world_size > 1:
        raise ConfigError(
            f"train.cuda_graphs: a captured step trains one process, but this run has {world_size}; "
            "leave it off for distributed runs"
        )


def lr_on_device(optimizer: torch.optim.Optimizer, device: torch.device) -> None:
    """Make each parameter group's learning rate a float32 tensor on ``device`` (in place from then
    on: PyTorch's schedules ``fill_`` a tensor learning rate, and its fused SGD and AdamW read it on
    the device), so that a captured update follows the schedule."""
    for group in optimizer.param_groups:
        lr = group["lr"]
        if not (isinstance(lr, torch.Tensor) and lr.device == device and lr.dtype == torch.float32):
            group["lr"] = torch.tensor(float(lr), dtype=torch.float32, device=device)


def _detached_copy(stats: StepStats) -> StepStats:
    """A copy of ``stats`` whose tensors the next replay does not overwrite."""
    copies = {
        f.name: getattr(stats, f.name).clone()
        for f in fields(stats)
        if isinstance(getattr(stats, f.name), torch.Tensor)
    }
    return replace(stats, **copies)


def _on_side_stream(fn: Callable[[], StepStats]) -> StepStats:
    """``fn()`` on a fresh stream that waits for the current one, and is waited for after."""
    current = torch.cuda.current_stream()
    side = torch.cuda.Stream()
    side.wait_stream(current)
    try:
        with torch.cuda.stream(side):
            return fn()
    finally:
        current.wait_stream(side)

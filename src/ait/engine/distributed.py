"""Data-parallel training with torchrun: process group, collectives, wrapping networks.

Launch (one node, 8 GPUs; two nodes: add --nnodes=2 --node_rank=K --rdzv_endpoint=HOST:PORT)::

    torchrun --nproc_per_node=8 -m ait train configs/paper/table1_cifar100_resnet32_ait.yaml

Without torchrun's environment (WORLD_SIZE unset or 1) everything here is a no-op, so the same
code path serves one process. Each rank takes a contiguous shard of every global batch, with all
views of a sample on the same rank; rank 0 alone writes to the run directory.
"""

from __future__ import annotations

import datetime
import gc
import os
import sys
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn


@dataclass
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def all_reduce_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """Sum over ranks (a new tensor; the input is left alone)."""
        if not self.enabled:
            return tensor
        out = tensor.clone()
        dist.all_reduce(out, op=dist.ReduceOp.SUM)
        return out

    def max_int(self, value: int, device: torch.device) -> int:
        """The largest ``value`` over ranks (one small all-reduce)."""
        if not self.enabled:
            return value
        t = torch.tensor([value], dtype=torch.int64, device=device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return int(t.item())

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank (picklable objects)."""
        if not self.enabled:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def gather_objects(self, obj: Any) -> list[Any]:
        """Every rank's picklable ``obj``, in rank order, on every rank."""
        if not self.enabled:
            return [obj]
        parts: list[Any] = [None] * self.world_size
        dist.all_gather_object(parts, obj)
        return parts

    def gather_cat(self, tensor: torch.Tensor) -> torch.Tensor:
        """Concatenate every rank's (n_r, ...) CPU tensor in rank order (sizes may differ)."""
        if not self.enabled:
            return tensor
        parts: list[Any] = [None] * self.world_size
        dist.all_gather_object(parts, tensor.cpu())
        return torch.cat(parts)


def init_distributed(timeout_s: float = 1800.0) -> DistContext:
    """Join torchrun's process group when launched by it; one process otherwise.

    The timeout bounds every collective: if one rank dies, the others fail after at most
    ``timeout_s`` instead of hanging (torchrun also stops the remaining workers).
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistContext()
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(local_rank)
        dist.init_process_group(backend, timeout=datetime.timedelta(seconds=timeout_s))
    return DistContext(rank=rank, world_size=world, local_rank=local_rank)


def shutdown(ctx: DistContext, finished: bool = False) -> None:
    """Destroy the process group. ``finished``: every rank ended the run normally, so they first
    wait for each other (a peer that failed would never arrive: no barrier then)."""
    if ctx.enabled and dist.is_initialized():
        # DDP wrappers that reference cycles keep alive must go while their process group still
        # exists: freed after it, at interpreter exit, a reducer's thread aborts the process
        # ("terminate called without an active exception", a rank dying with SIGABRT after a
        # finished run, in about one launch in four on 2 CPU cores).
        gc.collect()
        if finished:
            # A rank whose connections close while its peer still finishes the run (rank 0 writes
            # the summary) was seen to abort the same way, rarely, on a loaded machine.
            try:
                ctx.barrier()
            except RuntimeError as err:  # a peer that failed after this rank finished: its run is done
                print(f"warning: rank {ctx.rank}: the other ranks did not finish ({err})", file=sys.stderr)
        dist.destroy_process_group()


class AllOutputs(nn.Module):
    """Makes ``forward`` return ModelOutputs, so DDP's gradient hooks see every output layer."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor):
        return self.net.forward_all(x)


def wrap_for_training(nets: list[nn.Module], ctx: DistContext, device: torch.device, sync_batchnorm: bool):
    """Forward callables (x -> ModelOutputs) for the trainer: DDP-wrapped when distributed."""
    if not ctx.enabled:
        return [net.forward_all for net in nets]
    if sync_batchnorm and device.type != "cuda":
        from ait.config import ConfigError

        raise ConfigError(
            "train.sync_batchnorm: PyTorch's SyncBatchNorm runs on GPUs only; set it to false "
            f"for training on {device.type}"
        )
    wrapped = []
    for net in nets:
        module: nn.Module = AllOutputs(net)
        if sync_batchnorm:
            module = nn.SyncBatchNorm.convert_sync_batchnorm(module)
        ids = [device.index] if device.type == "cuda" else None
        wrapped.append(nn.parallel.DistributedDataParallel(module, device_ids=ids))
    return wrapped


def device_for(ctx: DistContext, spec: str) -> str:
    """torchrun gives each process its own GPU: cuda:LOCAL_RANK when the config says auto/cuda."""
    if ctx.enabled and torch.cuda.is_available() and spec in ("auto", "cuda"):
        return f"cuda:{ctx.local_rank}"
    return spec

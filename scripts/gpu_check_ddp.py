"""One rank of data-parallel training through ait's own wrapping, for scripts/gpu_check.sh.

    python3 -m torch.distributed.run --standalone --nproc_per_node=1 scripts/gpu_check_ddp.py [--device cuda]

With one GPU, ``ait train`` under torchrun sees WORLD_SIZE=1 and never joins a process group, so a
one-process torchrun run does not touch NCCL. This worker does: it joins the group itself (NCCL on
CUDA, gloo on the CPU), wraps ResNet-20 with :func:`ait.engine.distributed.wrap_for_training`
(DDP, and SyncBatchNorm on CUDA) as a multi-GPU run does, trains a few AIT steps with the
BranchTrainer, and checks the losses against the same steps without the wrapping (one rank: the
same arithmetic, up to cuDNN's nondeterministic kernels). With one rank SyncBatchNorm computes
plain batch statistics (PyTorch skips the all-gather), so its cross-GPU path needs two GPUs.
Exit status 0 when everything agrees.
"""

from __future__ import annotations

import argparse
import os
import sys

import torch
import torch.distributed as dist

from ait import models
from ait.config import ConsistencyConfig, OptimConfig
from ait.engine.distributed import DistContext, shutdown, wrap_for_training
from ait.engine.optim import build_optimizer
from ait.engine.trainer import BranchTrainer
from ait.runtime.precision import resolve_precision
from ait.views import parse_recipe

STEPS, SAMPLES = 5, 64
MEAN, STD = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)


class OneRank(DistContext):
    """A context that counts as distributed with a world of one, so ait wraps the networks."""

    @property
    def enabled(self) -> bool:
        return True


def losses(device: torch.device, ctx: DistContext | None) -> list[float]:
    """Per-step AIT losses (CE + AiLoss) of ResNet-20 from seed 0, wrapped for ``ctx`` when given."""
    torch.manual_seed(0)
    prec = resolve_precision(device, "auto", None)
    net = models.create("resnet20", 10).to(device)
    if prec.channels_last:
        net = net.to(memory_format=torch.channels_last)
    forwards = wrap_for_training([net], ctx, device, sync_batchnorm=device.type == "cuda") if ctx else None
    opt = build_optimizer(net, "resnet20", OptimConfig(lr=0.05, momentum=0.9))
    recipes = [parse_recipe("rp"), parse_recipe("rp")]
    trainer = BranchTrainer([net], recipes, [(0, 0), (0, 1)], ConsistencyConfig(), prec, MEAN, STD, forwards=forwards)
    g = torch.Generator().manual_seed(1)
    images = torch.randint(0, 256, (SAMPLES, 3, 32, 32), generator=g, dtype=torch.uint8).to(device)
    labels = torch.randint(0, 10, (SAMPLES,), generator=g).to(device)
    gen = torch.Generator(device=device)
    out = []
    for step in range(STEPS):
        gen.manual_seed(step)
        stats = trainer.step(images, labels, [opt], generator=gen)
        out.append(float(stats.ce.sum() + stats.consistency))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        local = int(os.environ.get("LOCAL_RANK", "0"))
        device = torch.device(f"cuda:{local}")
        torch.cuda.set_device(device)
    dist.init_process_group(backend)
    ctx = OneRank(rank=dist.get_rank(), world_size=dist.get_world_size(), local_rank=0)
    probe = torch.full((4,), 2.0, device=device)
    dist.all_reduce(probe)  # the backend's own collective: a world of one leaves the values
    ok = bool(torch.all(probe == 2.0 * dist.get_world_size()))
    print(f"{backend} all_reduce over {dist.get_world_size()} rank(s): {'ok' if ok else probe.tolist()}")
    wrapped = losses(device, ctx)
    plain = losses(device, None)
    print("losses, DDP" + (" + SyncBatchNorm" if device.type == "cuda" else "") + ":", [f"{v:.5f}" for v in wrapped])
    print("losses, unwrapped:", [f"{v:.5f}" for v in plain])
    tol = 2e-2 if device.type == "cuda" else 1e-4  # bf16 and cuDNN's atomics on the GPU
    agree = all(abs(a - b) <= tol * max(1.0, abs(b)) for a, b in zip(wrapped, plain))
    print(f"DDP and unwrapped losses agree within {tol}: {agree}")
    shutdown(ctx, finished=True)
    return 0 if ok and agree else 1


if __name__ == "__main__":
    sys.exit(main())

"""Deterministic epoch batching, sharded across ranks, resumable mid-epoch."""

from __future__ import annotations

import math

import torch

__all__ = ["EpochSampler"]

_SEED_MULT = 1_000_003  # mixes (seed, epoch) into one generator seed


class EpochSampler:
    """Index batches for one epoch from a permutation seeded by (seed, epoch) only.

    The order of epoch e never depends on earlier epochs, so a resumed run replays exactly the
    batches it would have seen. `batch_size` is the global batch; with world_size > 1 each rank
    gets the contiguous shard [rank * b, (rank + 1) * b) of every batch, b = batch_size //
    world_size (batch_size must divide evenly).

    Last batch: with drop_last it is dropped when short. Otherwise it is kept; with
    world_size > 1 it is padded by wrapping around to the start of the epoch's permutation until
    its size is a multiple of world_size (at most world_size - 1 repeated samples), so every rank
    gets a shard of equal size and collective ops do not hang.
    """

    def __init__(
        self,
        num_samples: int,
        batch_size: int,
        seed: int,
        drop_last: bool = False,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if int(num_samples) < 1:
            raise ValueError(f"num_samples must be >= 1, got {num_samples!r}")
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size!r}")
        if int(world_size) < 1:
            raise ValueError(f"world_size must be >= 1, got {world_size!r}")
        if not 0 <= int(rank) < int(world_size):
            raise ValueError(f"rank must be in [0, {world_size}), got {rank!r}")
        if int(batch_size) % int(world_size) != 0:
            raise ValueError(f"global batch_size {batch_size} is not divisible by world_size {world_size}")
        if drop_last and int(num_samples) < int(batch_size):
            raise ValueError(f"drop_last with num_samples {num_samples} < batch_size {batch_size} gives no batches")
        self.num_samples = int(num_samples)
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.drop_last = bool(drop_last)
        self.rank = int(rank)
        self.world_size = int(world_size)
        self.shard_size = self.batch_size // self.world_size  # per-rank size of a full batch

    def __len__(self) -> int:
        return self.num_batches(0)

    def num_batches(self, epoch: int = 0) -> int:
        """Batches per epoch (the same for every epoch)."""
        if self.drop_last:
            return self.num_samples // self.batch_size
        return math.ceil(self.num_samples / self.batch_size)

    def permutation(self, epoch: int) -> torch.Tensor:
        """int64 (num_samples,): the epoch's order, from a CPU generator seeded by (seed, epoch)."""
        if int(epoch) < 0:
            raise ValueError(f"epoch must be >= 0, got {epoch!r}")
        # Kept within the generator's 64-bit seed range for any seed.
        g = torch.Generator().manual_seed((self.seed * _SEED_MULT + int(epoch)) % (1 << 63))
        return torch.randperm(self.num_samples, generator=g)

    def batches(self, epoch: int, start: int = 0) -> list[torch.Tensor]:
        """This rank's index batches (int64, CPU) of `epoch`, from batch `start` on (resume)."""
        n_batches = self.num_batches(epoch)
        if not 0 <= int(start) <= n_batches:
            raise ValueError(f"start must be in [0, {n_batches}], got {start!r}")
        perm = self.permutation(epoch)
        used = n_batches * self.batch_size if self.drop_last else self.num_samples
        if not self.drop_last and self.world_size > 1:
            last = used - (n_batches - 1) * self.batch_size
            padded = math.ceil(last / self.world_size) * self.world_size
            pad = padded - last
            if pad:
                # repeat() covers the tiny case num_samples < pad.
                wrap = perm.repeat(math.ceil(pad / self.num_samples))[:pad]
                perm = torch.cat([perm, wrap])
                used += pad
        perm = perm[:used]
        out = []
        for b in range(int(start), n_batches):
            batch = perm[b * self.batch_size : (b + 1) * self.batch_size]
            shard = batch.numel() // self.world_size
            out.append(batch[self.rank * shard : (self.rank + 1) * shard].clone())
        return out

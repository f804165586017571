"""Run by torchrun in tests/engine/test_distributed.py: one training run, then each rank saves its weights.

python -m torch.distributed.run --standalone --nproc_per_node=2 ddp_worker.py CONFIG RUN_DIR OUT [FAIL_RANK]
"""

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import torch  # noqa: E402

import ait  # noqa: E402
import ait_testutils  # noqa: E402,F401  (registers the test networks)
from ait.engine import run as run_module  # noqa: E402
from ait.engine.trainer import BranchTrainer  # noqa: E402

config, run_dir, out = sys.argv[1], sys.argv[2], Path(sys.argv[3])
fail_rank = int(sys.argv[4]) if len(sys.argv) > 4 else -1
rank = int(os.environ.get("RANK", "0"))

# Keep each rank's final weights: checkpoints hold rank 0's only.
original_finish = run_module.finish_epoch


def finish_and_dump(cfg, ctx, pos, networks, *args, **kwargs):
    record = original_finish(cfg, ctx, pos, networks, *args, **kwargs)
    torch.save([net.state_dict() for net in networks], out / f"rank{rank}.pt")
    return record


run_module.finish_epoch = finish_and_dump

if rank == fail_rank:
    original_step = BranchTrainer.step

    def failing_step(self, *args, **kwargs):
        raise RuntimeError(f"rank {rank} fails on purpose")

    BranchTrainer.step = failing_step

ait.train(config, run_dir=run_dir)

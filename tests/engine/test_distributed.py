"""Data-parallel training with torchrun (gloo, 2 CPU processes) against one process."""

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from ait_testutils import tiny_config

WORKER = Path(__file__).with_name("ddp_worker.py")


def torchrun(nproc: int, config: Path, run_dir: Path, out: Path, *extra: str, timeout: float = 240):
    out.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={nproc}",
        str(WORKER),
        str(config),
        str(run_dir),
        str(out),
        *extra,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def config(tmp_path):
    # GroupNorm network: no batch statistics, so 2 x 16 samples per step equals 1 x 32 exactly in exact
    # arithmetic; 320 samples divide into the 16-sample global AIT batch, so no padding either.
    cfg = tiny_config(
        tmp_path, "ait", strategy={"networks": ["test_tiny_gn"]}, train={"epochs": 2, "num_threads": 1, "eval_every": 1}
    )
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_two_processes_match_one_process(tmp_path, config):
    one = torchrun(1, config, tmp_path / "one", tmp_path / "out1")
    assert one.returncode == 0, one.stderr[-3000:]
    two = torchrun(2, config, tmp_path / "two", tmp_path / "out2")
    assert two.returncode == 0, two.stderr[-3000:]

    single = torch.load(tmp_path / "out1" / "rank0.pt")
    rank0 = torch.load(tmp_path / "out2" / "rank0.pt")
    rank1 = torch.load(tmp_path / "out2" / "rank1.pt")
    for key in rank0[0]:
        assert torch.equal(rank0[0][key], rank1[0][key]), key  # DDP keeps the ranks identical
        # Same global batch and the same views: equal up to the order of float additions.
        assert torch.allclose(rank0[0][key], single[0][key], rtol=1e-4, atol=1e-5), key

    s1 = json.loads((tmp_path / "one" / "summary.json").read_text())
    s2 = json.loads((tmp_path / "two" / "summary.json").read_text())
    assert s2["world_size"] == 2 and s1["world_size"] == 1
    assert s1["steps_per_epoch"] == s2["steps_per_epoch"]
    # Evaluation covers each test sample once: accuracy equal up to near-ties of the logits.
    assert abs(s1["networks"][0]["final_top1"] - s2["networks"][0]["final_top1"]) <= 2.5
    lines1 = [json.loads(x) for x in (tmp_path / "one" / "metrics.jsonl").read_text().splitlines()]
    lines2 = [json.loads(x) for x in (tmp_path / "two" / "metrics.jsonl").read_text().splitlines()]
    assert len(lines2) == 2  # rank 0 alone writes
    assert lines1[-1]["train_ce"][0] == pytest.approx(lines2[-1]["train_ce"][0], rel=1e-3)


def test_one_failing_rank_stops_all_ranks(tmp_path, config):
    start = time.time()
    result = torchrun(2, config, tmp_path / "fail", tmp_path / "outf", "1", timeout=200)
    assert result.returncode != 0
    assert "fails on purpose" in result.stderr
    assert time.time() - start < 180


def test_synchronised_batchnorm_on_cpu_is_a_clear_error():
    from ait.config import ConfigError
    from ait.engine.distributed import DistContext, wrap_for_training

    net = torch.nn.Linear(2, 2)
    with pytest.raises(ConfigError, match="sync_batchnorm.*GPUs only"):
        wrap_for_training([net], DistContext(rank=0, world_size=2), torch.device("cpu"), sync_batchnorm=True)

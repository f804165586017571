"""The run directory: everything needed to understand and repeat a run.

RUN_DIR/
  config.yaml      the resolved config (plain data)
  env.json         versions, device, git commit, command line
  metrics.jsonl    one JSON object per epoch
  summary.json     final numbers per network (written at the end)
  checkpoint.pt    the last end-of-epoch state of every network
"""

from __future__ import annotations

import platform
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch

from ait.config import RESUME_MAY_CHANGE, Config, config_differences, dump_yaml
from ait.engine.checkpoint import CheckpointError, load_checkpoint
from ait.runtime.files import write_json, write_text_atomic


class RunDirError(RuntimeError):
    """The run directory cannot be used (it exists already, or cannot be written)."""

    exit_status = 2  # `ait` ends with this status and a one-line message (ait.cli.run_handler)


def default_run_dir(config: Config) -> Path:
    return Path(config.out_dir) / config.name / f"seed{config.seed}"


def prepare_run_dir(path: str | Path, overwrite: bool = False) -> Path:
    """Create ``path`` for a new run. An existing non-empty directory is an error unless ``overwrite``.

    Checks that the directory is writable before any training starts, so a run never trains for an
    hour and then fails to save.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise RunDirError(f"run directory {str(path)!r} exists and is not a directory")
    if path.is_dir() and any(path.iterdir()):
        if not overwrite:
            raise RunDirError(
                f"run directory {str(path)!r} already holds a run; pass --overwrite to replace it, "
                "or choose another with --run-dir"
            )
        shutil.rmtree(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-test-"):
            pass
    except OSError as err:
        raise RunDirError(f"cannot write to run directory {str(path)!r}: {err.strerror or err}") from None
    return path


def git_commit() -> dict[str, Any] | None:
    """The commit of the ait source tree, if it is a git checkout."""
    here = Path(__file__).resolve().parent
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=here,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": sha, "dirty": bool(dirty)}


def environment_record(device: torch.device, precision_name: str) -> dict[str, Any]:
    import numpy

    import ait

    record: dict[str, Any] = {
        "ait": ait.__version__,
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "platform": platform.platform(),
        "hostname": socket.gethostname(),
        "device": str(device),
        "precision": precision_name,
        "torch_threads": torch.get_num_threads(),
        "command": sys.argv,
        "git": git_commit(),
    }
    if device.type == "cuda":
        record["gpu"] = torch.cuda.get_device_name(device)
        record["cuda"] = torch.version.cuda
    return record


def write_run_header(run_dir: Path, config: Config, env: dict[str, Any]) -> None:
    write_text_atomic(run_dir / "config.yaml", dump_yaml(config))
    write_json(run_dir / "env.json", env)


def checkpoint_size_estimate(networks) -> int:
    """Bytes of a checkpoint: weights and buffers, plus SGD momentum, plus a margin."""
    params = sum(t.numel() * t.element_size() for net in networks for t in net.state_dict().values())
    return int(params * 2.2) + (1 << 20)


def check_free_space(run_path: Path, needed: int) -> None:
    free = shutil.disk_usage(run_path).free
    if free < 2 * needed:  # a new checkpoint is written beside the old one before the rename
        raise RunDirError(
            f"only {free / 2**20:.0f} MiB free on the disk of {str(run_path)!r}; checkpoints of this "
            f"run need about {2 * needed / 2**20:.0f} MiB"
        )


def open_run_directory(cfg: Config, run_path: Path, overwrite: bool, resume: bool) -> dict[str, Any] | None:
    """Prepare the run directory; returns the checkpoint to resume from, or None for a new run."""
    checkpoint = run_path / "checkpoint.pt"
    complete = (run_path / "summary.json").exists()
    if resume and not checkpoint.exists():
        raise RunDirError(f"cannot resume: {str(run_path)!r} holds no checkpoint.pt")
    if overwrite or not checkpoint.exists():
        if resume:
            raise RunDirError("--resume and --overwrite contradict each other")
        prepare_run_dir(run_path, overwrite=overwrite)
        return None
    if complete:
        raise RunDirError(
            f"run directory {str(run_path)!r} holds a finished run; pass --overwrite to replace it, "
            "or choose another with --run-dir"
        )
    try:
        state = load_checkpoint(checkpoint)
    except CheckpointError as err:
        raise RunDirError(f"{err}; remove it or pass --overwrite to start again") from None
    diffs = config_differences(state["config"], cfg.to_dict(), ignore=RESUME_MAY_CHANGE)
    if diffs:
        raise RunDirError(
            f"{str(run_path)!r} holds a checkpoint of a different config, so it is not resumed; "
            f"differing keys: {'; '.join(diffs)}. Pass --overwrite to start again or use --run-dir"
        )
    return state

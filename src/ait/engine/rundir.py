"""The run directory: everything needed to understand and repeat a run.

RUN_DIR/
  config.yaml      the resolved config (plain data)
  env.json         versions, device, git commit, command line
  metrics.jsonl    one JSON object per epoch
  summary.json     final numbers per network (written at the end)
  checkpoint.pt    the last end-of-epoch state of every network
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch

from ait.config import Config, dump_yaml


class RunDirError(RuntimeError):
    """The run directory cannot be used (it exists already, or cannot be written)."""


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


def write_text_atomic(path: Path, text: str) -> None:
    """Write via a temporary file and rename, so a crash never leaves half a file."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_json(path: Path, data: Any) -> None:
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def append_jsonl(path: Path, record: dict[str, Any]) -> None:
    with path.open("a") as f:
        f.write(json.dumps(record) + "\n")


def save_atomic(obj: Any, path: Path) -> None:
    """torch.save to a temporary file, then rename: an interrupted save keeps the previous file."""
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


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

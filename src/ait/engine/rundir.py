"""The run directory: everything needed to understand and repeat a run.

RUN_DIR/
  config.yaml      the resolved config (plain data)
  env.json         versions, device, git commit, command line, fingerprints of the config and data
  metrics.jsonl    one JSON object per epoch
  summary.json     final numbers per network (written at the end)
  checkpoint.pt    the last end-of-epoch state of every network
  eval/            what `ait eval` wrote
  .lock            held by the run that writes the directory (ait.engine.lock)

A directory is a run directory when ``ait train`` made it: it holds nothing but the entries above
(and ait's temporary files), and more than a config.yaml (which may be the user's own). Only such
a directory is ever emptied, by --overwrite or to start again a run that saved no training; any
other is refused with what it holds.
"""

from __future__ import annotations

import json
import platform
import re
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch

from ait.config import RESUME_MAY_CHANGE, Config, config_differences, dump_yaml, run_dir_under
from ait.engine.checkpoint import CheckpointError, load_checkpoint, state_bytes
from ait.engine.lock import LOCK_NAME
from ait.runtime.files import file_in_the_way, write_json, write_text_atomic


class RunDirError(RuntimeError):
    """The run directory cannot be used (it exists already, or cannot be written)."""

    exit_status = 2  # `ait` ends with this status and a one-line message (ait.cli.run_handler)


class NotARunDirectory(RunDirError):
    """The directory holds files ait did not write: it is never emptied or written into."""


def default_run_dir(config: Config) -> Path:
    return run_dir_under(config.out_dir, config.name, config.seed)


# What ait writes there, and what the loggers of train.loggers add (ait.engine.loggers).
RUN_ENTRIES = ("config.yaml", "env.json", "metrics.jsonl", "summary.json", "checkpoint.pt", "eval", LOCK_NAME) + (
    "metrics.csv",
    "tensorboard",
    "mlflow.db",
    "mlflow.json",
    "wandb",
    "wandb.json",
    "error.txt",  # the last error of a sweep's run that failed (ait.sweep)
)
# ait's temporary files: atomic writes (".checkpoint.pt.x1y2.tmp", before: ".checkpoint.pt.tmp"), the write
# test, and SQLite's beside the MLflow database.
_TEMPORARY = re.compile(
    r"\.(?:config\.yaml|env\.json|metrics\.jsonl|metrics\.csv|summary\.json|checkpoint\.pt|mlflow\.json|wandb\.json)"
    r"(?:\..+)?\.tmp|\.write-test-.*|mlflow\.db-(?:journal|wal|shm)"
)


def foreign_entries(path: Path) -> list[str]:
    """The names in ``path`` that ait did not write, sorted."""
    return sorted(e.name for e in path.iterdir() if e.name not in RUN_ENTRIES and not _TEMPORARY.fullmatch(e.name))


def holds_training(path: Path) -> bool:
    """Whether a run directory holds anything of a trained run (a checkpoint or a summary)."""
    return (path / "checkpoint.pt").exists() or (path / "summary.json").exists()


def check_run_directory(path: Path, complete: bool = True) -> None:
    """Refuse an existing, non-empty ``path`` that is not a run directory ait made (see above).

    complete=False checks only for entries ait does not write: the check that may run before the
    directory's lock is held, while another run may be writing its first files there.
    """
    if path.exists() and not path.is_dir():
        raise RunDirError(f"run directory {str(path)!r} exists and is not a directory")
    entries = [e.name for e in path.iterdir() if e.name != LOCK_NAME] if path.is_dir() else []
    foreign = foreign_entries(path) if entries else []
    named = [e for e in entries if not _TEMPORARY.fullmatch(e)]  # a crash may leave a temporary file alone
    written = any((path / name).exists() for name in ("env.json", "checkpoint.pt", "metrics.jsonl", "summary.json"))
    if foreign or (complete and named and not written):  # a lone config.yaml may be the user's own
        shown = foreign or named
        listed = ", ".join(shown[:5]) + (f" and {len(shown) - 5} more" if len(shown) > 5 else "")
        raise NotARunDirectory(
            f"{str(path)!r} is not a run directory that ait made (it holds {listed}); ait never deletes or "
            "writes over files it did not write, even with --overwrite: choose another with --run-dir"
        )


def prepare_run_dir(path: str | Path, overwrite: bool = False) -> Path:
    """Make ``path`` ready for a new run: an empty directory, kept or made.

    An existing run directory is emptied (its lock kept) when ``overwrite``, or when it holds no
    training (a run stopped before its first checkpoint); one holding training is refused without
    ``overwrite``, and any other non-empty directory always (:func:`check_run_directory`). Checks
    that the directory is writable before any training starts, so a run never trains for an hour and
    then fails to save.
    """
    path = Path(path)
    check_run_directory(path)
    entries = [e for e in path.iterdir() if e.name != LOCK_NAME] if path.is_dir() else []
    if entries:
        if holds_training(path) and not overwrite:
            raise RunDirError(
                f"run directory {str(path)!r} already holds a run; pass --overwrite to replace it, "
                "or choose another with --run-dir"
            )
        if not holds_training(path):
            note = "no training was saved there (stopped before its first checkpoint); starting again"
            print(f"{path}: {note}", file=sys.stderr)
        for entry in entries:
            if entry.is_dir():
                shutil.rmtree(entry)
            else:
                entry.unlink()
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-test-"):
            pass
    except OSError as err:
        raise unwritable(path, err) from None
    return path


def unwritable(path: Path, err: OSError) -> RunDirError:
    """The error for a run directory that cannot be made or written, naming a file in its way."""
    blocker = file_in_the_way(path)
    why = f"{str(blocker)!r} is a file, not a folder" if blocker else err.strerror or err
    return RunDirError(f"cannot write to run directory {str(path)!r}: {why}")


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

    from ait._version import __version__

    record: dict[str, Any] = {
        "ait": __version__,
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


def network_sources(config: Config) -> list[dict[str, Any]]:
    """Where each network's architecture comes from (the zoo, a plugin module, timm, ...) and its
    initial weights: recorded in env.json, so that a reader knows which module to import."""
    from ait import models

    return [
        {
            "name": name,
            "source": models.source(name),
            "weights": config.models[name].weights if name in config.models else None,
        }
        for name in config.strategy.networks
    ]


def model_input(stream) -> dict[str, Any]:
    """What a trained network expects and gives, for inference without the training data
    (env.json's "model_input"): the class names, the input shape (C, H, W), the normalisation of
    [0, 1] images, and (image folders) the shorter side evaluation resizes to before its centre crop."""
    return {
        "classes": list(stream.classes),
        "input_shape": list(stream.input_shape),
        "mean": list(stream.mean),
        "std": list(stream.std),
        "eval_resize": stream.info.get("eval_resize"),
    }


def read_model_input(run_dir: Path) -> dict[str, Any] | None:
    """env.json's "model_input" (class names, input shape, normalisation, eval resize), or the same
    from summary.json's data record for runs made before env.json had it (class names 0..K-1), or None."""
    for name, key in (("env.json", "model_input"), ("summary.json", "data")):
        try:
            record = json.loads((run_dir / name).read_text()).get(key)
        except (OSError, ValueError, AttributeError):
            continue
        if record and "input_shape" in record:
            return record
        if record and "image_shape" in record and "num_classes" in record:  # a summary's data record
            classes = [str(i) for i in range(record["num_classes"])]
            return {**record, "input_shape": record["image_shape"], "classes": classes}
    return None


def keep_trained_normalisation(stream, run_dir: Path, name: str | None) -> None:
    """A resumed run goes on with the normalisation its networks began with (env.json), not one
    recomputed from data that changed since (``--allow-data-change``); said when the two differ
    (by the process that logs, ``name`` given; None on the other ranks)."""
    recorded = read_model_input(run_dir) or {}
    if "mean" not in recorded or "std" not in recorded:
        return
    trained = (tuple(recorded["mean"]), tuple(recorded["std"]))
    if trained != (tuple(stream.mean), tuple(stream.std)):
        if name is not None:
            said = f"[{name}] the data changed: training goes on normalised as it began (mean, std {trained})"
            print(said, file=sys.stderr)
        stream.mean, stream.std = trained


def import_hint(run_dir: Path, model: str) -> str:
    """The end of an error message naming the module the run recorded for ``model`` (env.json),
    "; the run recorded ... pass --import MODULE", or "" when it recorded none."""
    try:
        env = json.loads((run_dir / "env.json").read_text())
    except (OSError, ValueError):
        return ""
    for entry in env.get("networks", []) if isinstance(env, dict) else []:
        if not isinstance(entry, dict) or entry.get("name") != model:
            continue
        source = entry.get("source") or {}
        if source.get("module") and source.get("kind") != "zoo":
            installed = f", or install {source['distribution']}" if source.get("distribution") else ""
            return (
                f"; the run recorded that {model!r} came from module {source['module']!r} ({run_dir / 'env.json'}): "
                f"pass --import {source['module']}{installed}"
            )
    return ""


def write_run_header(run_dir: Path, config: Config, env: dict[str, Any]) -> None:
    write_text_atomic(run_dir / "config.yaml", dump_yaml(config))
    write_json(run_dir / "env.json", env)


def checkpoint_size_estimate(networks) -> int:
    """Bytes of a checkpoint before the run has one: the weights and buffers, as many again for SGD
    momentum, and a margin (:func:`ait.engine.checkpoint.state_bytes` measures a real one)."""
    weights = [net.state_dict() for net in networks]
    return int(1.1 * state_bytes({"networks": weights + weights}))


def check_free_space(run_path: Path, needed: int) -> None:
    free = shutil.disk_usage(run_path).free
    if free < 2 * needed:  # a new checkpoint is written beside the old one before the rename
        raise RunDirError(
            f"only {free / 2**20:.0f} MiB free on the disk of {str(run_path)!r}; checkpoints of this "
            f"run need about {2 * needed / 2**20:.0f} MiB"
        )


def open_run_directory(cfg: Config, run_path: Path, overwrite: bool, resume: bool) -> dict[str, Any] | None:
    """Prepare the run directory (whose lock the caller holds); returns the checkpoint to resume
    from, or None for a new run."""
    checkpoint = run_path / "checkpoint.pt"
    complete = (run_path / "summary.json").exists()
    if resume and overwrite:
        raise RunDirError("--resume and --overwrite contradict each other")
    if resume and not checkpoint.exists():
        raise RunDirError(f"cannot resume: {str(run_path)!r} holds no checkpoint.pt")
    if overwrite or not checkpoint.exists():
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


# The noisy labels are part of the training fingerprint; their draw changed once (2026-12-01: the
# noise has its own random stream, ait.runtime.rundata.LABEL_NOISE_SEED_OFFSET).
NOISE_DRAW_NOTE = (
    ". With data.label_noise the files may be unchanged: a run made before 2026-12-01 drew its noisy labels "
    "from another random stream (its evaluation uses the test set only)"
)


def check_data_unchanged(
    saved: dict[str, Any], current: dict[str, str], where: str, allowed: bool, hint: str, label_noise: float = 0.0
) -> None:
    """Refuse data whose fingerprint differs from the one a checkpoint recorded, naming the split.

    ``saved``: the checkpoint's ``fingerprints["data"]`` ({"train": hex, "test": hex}; absent in
    checkpoints written before fingerprints, which are not checked); ``current``: the same of the
    data as it is now. ``allowed`` (--allow-data-change) lets a changed split through; ``hint``
    ends the message with what to do; ``label_noise`` (the run's ``data.label_noise``) adds the one
    cause of a changed training fingerprint that is not in the files.
    """
    changed = [split for split in ("train", "test") if saved.get(split) and saved.get(split) != current.get(split)]
    if changed and not allowed:
        raise RunDirError(
            f"{where}: the {' and '.join(changed)} data changed since the checkpoint was written (fingerprint "
            + ", ".join(f"{s} {saved[s]} -> {current.get(s)}" for s in changed)
            + f"); {hint}"
            + (NOISE_DRAW_NOTE if "train" in changed and label_noise > 0 else "")
        )

"""What a run records about itself: a metrics line per epoch, the history a resumed run keeps, the summary.

metrics.jsonl   one :func:`finish_epoch` record per epoch (losses, train top-1, test accuracy, speed)
summary.json    :func:`build_summary`: final-epoch accuracy per network, the best epoch labelled
"""

from __future__ import annotations

import json
import time
import warnings
from pathlib import Path
from typing import Any

import torch

from ait.config import Config
from ait.engine.checkpoint import CheckpointError
from ait.engine.state import Position
from ait.runtime.files import write_text_atomic

# Fields of a metrics record that measure time, not training: they differ between a resumed and an
# uninterrupted run; everything else is identical.
TIMING_FIELDS = ("images_per_s", "epoch_seconds", "eval_seconds", "wall_seconds")


def finish_epoch(
    cfg: Config, ctx, pos: Position, networks, trainer, stream, precision, epoch: int, wall_start: float
) -> dict[str, Any]:
    """The epoch's metrics record (reduced over ranks), with a test evaluation when it is due."""
    t = cfg.train
    n_nets, device = len(networks), precision.device
    zeros = torch.zeros(n_nets, device=device)
    correct = ctx.all_reduce_sum(pos.correct if pos.correct is not None else zeros).tolist()
    seen_local = torch.tensor(pos.seen or [0] * n_nets, dtype=torch.float64, device=device)
    seen = ctx.all_reduce_sum(seen_local).tolist()
    train_ce, train_consistency = pos.train_means(ctx, seen, device)
    images = int(sum(seen))
    pos.train_seconds += pos.epoch_seconds
    pos.images_trained += images
    record: dict[str, Any] = {
        "epoch": epoch + 1,
        "lr": pos.epoch_lr,
        "train_ce": [round(v, 6) for v in train_ce],
        "train_consistency": round(train_consistency, 6),
        "train_top1": [round(100.0 * c / n, 4) if n else None for c, n in zip(correct, seen)],
        "images_per_s": round(images / pos.epoch_seconds, 2) if pos.epoch_seconds > 0 else None,
        "epoch_seconds": round(pos.epoch_seconds, 3),
    }
    if (epoch + 1) % t.eval_every == 0 or epoch + 1 == t.epochs:
        eval_start = time.perf_counter()
        record["test"] = stream.evaluate(networks, trainer.prepare_eval, precision, t.eval_batch_size)
        if stream.has_validation:  # the held-out training images: what a recipe is tuned on
            record["val"] = stream.evaluate(networks, trainer.prepare_eval, precision, t.eval_batch_size, split="val")
        record["eval_seconds"] = round(time.perf_counter() - eval_start, 3)
    record["wall_seconds"] = round(time.perf_counter() - wall_start, 3)
    return record


def read_history(path: Path, upto_epoch: int, rewrite: bool) -> list[dict[str, Any]]:
    """Records of the epochs a checkpoint covers; later lines (written after the checkpoint that a
    crash then lost) are dropped from the file, since those epochs are trained again. A torn last
    line (a crash in the middle of writing it) is dropped with a warning; a damaged line before the
    last is a CheckpointError naming the file and line."""
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    records, torn = [], False
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            if any(rest.strip() for rest in lines[number:]):
                raise CheckpointError(
                    f"{path}: line {number} is not a JSON record; repair or remove the line"
                ) from None
            warnings.warn(f"{path}: the last line is torn (a crash while it was written); dropped", stacklevel=2)
            torn = True
    kept = [r for r in records if r["epoch"] <= upto_epoch]
    if rewrite and (torn or len(kept) != len(records)):
        write_text_atomic(path, "".join(json.dumps(r) + "\n" for r in kept))
    return kept


def _network_entries(cfg: Config, evaluated: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per network (and the ensemble, when evaluated): its final and best test top-1 over the
    ``evaluated`` epochs, and the final validation top-1 when there is a validation split."""
    final = evaluated[-1]
    keys = [f"net{k}" for k in range(len(cfg.strategy.networks))]
    keys += ["ensemble"] if "ensemble" in final["test"] else []
    entries = []
    for k, key in enumerate(keys):
        best = max(evaluated, key=lambda r: r["test"][key]["top1"])
        entry = {
            "key": key,
            "name": cfg.strategy.networks[k] if key != "ensemble" else "ensemble",
            "final_top1": final["test"][key]["top1"],
            "final_top5": final["test"][key]["top5"],
            "best_top1": best["test"][key]["top1"],
            "best_epoch": best["epoch"],
        }
        if "val" in final:  # data.val_fraction: tune on these, never on the test numbers
            entry["final_val_top1"] = final["val"][key]["top1"]
        entries.append(entry)
    return entries


def build_summary(
    cfg: Config,
    run_path: Path,
    history: list[dict[str, Any]],
    pos: Position,
    data_info: dict[str, Any],
    precision_name: str,
    device: torch.device,
    steps_per_epoch: int,
    world_size: int,
) -> dict[str, Any]:
    """Final-epoch accuracy is the headline; the best epoch is reported beside it, labelled."""
    entries = _network_entries(cfg, [r for r in history if "test" in r])
    return {
        "name": cfg.name,
        "run_dir": str(run_path),
        "strategy": cfg.strategy.name,
        "views": list(cfg.strategy.views),
        "consistency_weight": cfg.consistency.weight,
        "dataset": cfg.data.dataset,
        "seed": cfg.seed,
        "epochs": cfg.train.epochs,
        "steps_per_epoch": steps_per_epoch,
        "total_steps": steps_per_epoch * cfg.train.epochs,
        "networks": [e for e in entries if e["key"] != "ensemble"],
        "ensemble": next((e for e in entries if e["key"] == "ensemble"), None),
        "wall_seconds": round(pos.wall_seconds, 2),
        "train_seconds": round(pos.train_seconds, 2),
        "images_per_s": round(pos.images_trained / pos.train_seconds, 2) if pos.train_seconds > 0 else None,
        "nonfinite_skips": pos.nonfinite_skips,
        "world_size": world_size,
        "precision": precision_name,
        "device": str(device),
        "data": data_info,
    }

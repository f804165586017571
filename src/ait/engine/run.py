"""Train a run from a config: data, networks, the branch trainer, evaluation, the run directory.

From the command line::

    ait train configs/cpu/cifar10_ait_resnet20.yaml --set train.epochs=5
    ait train configs/paper/table1_cifar100_resnet32_ait.yaml --set data.root=~/data   # GPU

From Python::

    import ait
    summary = ait.train("configs/cpu/cifar10_ait_resnet20.yaml", overrides=["train.epochs=2"])
    summary["networks"][0]["final_top1"]
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch

from ait import models
from ait import views as views_lib
from ait.config import Config, load_config
from ait.data import EpochSampler
from ait.engine.datasets import build_data
from ait.engine.optim import build_optimizer, build_scheduler
from ait.engine.precision import resolve_device, resolve_precision
from ait.engine.progress import Progress
from ait.engine.rundir import (append_jsonl, default_run_dir, environment_record, prepare_run_dir,
                               save_atomic, write_json, write_run_header)
from ait.engine.trainer import BranchTrainer
from ait.evaluate.accuracy import evaluate_accuracy


def step_seed(seed: int, epoch: int, step: int) -> int:
    """Seed of the view generator for one step: a function of (seed, epoch, step) alone, so any
    step can be replayed without the generator's history (exact resume, reproducible views)."""
    return (seed * 1_000_003 + epoch) * 1_000_033 + step


def samples_per_step(config: Config) -> int:
    """Samples drawn per step: ``batch_size`` images per network, so AIT with V views takes
    ``batch_size / V`` samples (DESIGN.md section 1: an AIT epoch has V times the steps)."""
    if config.strategy.name == "ait":
        return config.train.batch_size // len(config.strategy.views)
    return config.train.batch_size


def train(config: Config | dict | str | Path, overrides: list[str] | tuple = (), run_dir: str | Path | None = None,
          overwrite: bool = False) -> dict[str, Any]:
    """Train the run described by ``config``; write its run directory; return its summary."""
    cfg = load_config(config, overrides)
    t, s = cfg.train, cfg.strategy
    if t.num_threads:
        torch.set_num_threads(t.num_threads)
    device = resolve_device(t.device)
    precision = resolve_precision(device, t.precision, t.channels_last)

    data = build_data(cfg.data, cfg.seed)  # fails on bad data before anything is written
    run_path = prepare_run_dir(run_dir or default_run_dir(cfg), overwrite=overwrite)
    write_run_header(run_path, cfg, environment_record(device, precision.name))

    # Networks are built in order from the run's seed, so a seed fixes every initialisation.
    torch.manual_seed(cfg.seed)
    in_channels, num_classes = data.train.image_shape[0], data.train.num_classes
    networks = []
    for name in s.networks:
        net = models.create(name, num_classes=num_classes, in_channels=in_channels).to(device)
        if precision.channels_last:
            net = net.to(memory_format=torch.channels_last)
        networks.append(net)
    recipes = [views_lib.parse_recipe(v) for v in s.views]
    trainer = BranchTrainer(networks, recipes, s.branches(), cfg.consistency, precision, data.mean, data.std)

    # Small datasets live on the training device as uint8; views are made there, batch by batch.
    train_images = data.train.images.to(device)
    train_labels = data.train.labels.to(device)
    sampler = EpochSampler(len(data.train), samples_per_step(cfg), seed=cfg.seed)
    steps_per_epoch = len(sampler)
    if t.max_steps_per_epoch:
        steps_per_epoch = min(steps_per_epoch, t.max_steps_per_epoch)
    optimizers = [build_optimizer(net, name, cfg.optim) for net, name in zip(networks, s.networks)]
    schedulers = [build_scheduler(opt, cfg.optim, steps_per_epoch, t.epochs) for opt in optimizers]
    generator = torch.Generator(device=device)

    progress = Progress(t.progress, total_epochs=t.epochs, steps_per_epoch=steps_per_epoch, name=cfg.name)
    progress.start(run_path, data.info, precision.name, device)
    history: list[dict[str, Any]] = []
    run_start = time.perf_counter()
    train_seconds = 0.0
    images_trained = 0
    for epoch in range(t.epochs):
        epoch_start = time.perf_counter()
        sums = None
        seen = [0] * len(networks)
        lr = optimizers[0].param_groups[0]["lr"]
        progress.begin_epoch(epoch)
        for step, idx in enumerate(sampler.batches(epoch)):
            if step >= steps_per_epoch:
                break
            idx = idx.to(device)
            generator.manual_seed(step_seed(cfg.seed, epoch, step))
            stats = trainer.step(train_images[idx], train_labels[idx], optimizers, schedulers, generator)
            step_sums = (stats.ce, stats.consistency, stats.correct)
            sums = step_sums if sums is None else tuple(a + b for a, b in zip(sums, step_sums))
            seen = [a + b for a, b in zip(seen, stats.images)]
            progress.step(step, stats, lambda: images_per_second(seen, time.perf_counter() - epoch_start))
        epoch_train_seconds = time.perf_counter() - epoch_start
        train_seconds += epoch_train_seconds
        images_trained += sum(seen)
        steps_done = min(len(sampler), steps_per_epoch)
        record: dict[str, Any] = {
            "epoch": epoch + 1,
            "lr": lr,
            "train_ce": [round(v / steps_done, 6) for v in sums[0].tolist()],
            "train_consistency": round(sums[1].item() / steps_done, 6),
            "train_top1": [round(100.0 * c / n, 4) for c, n in zip(sums[2].tolist(), seen)],
            "images_per_s": round(sum(seen) / epoch_train_seconds, 2),
            "epoch_seconds": round(epoch_train_seconds, 3),
        }
        if (epoch + 1) % t.eval_every == 0 or epoch + 1 == t.epochs:
            eval_start = time.perf_counter()
            table = evaluate_accuracy(networks, data.test.images, data.test.labels, trainer.prepare_eval,
                                      precision, t.eval_batch_size)
            record["test"] = table
            record["eval_seconds"] = round(time.perf_counter() - eval_start, 3)
        record["wall_seconds"] = round(time.perf_counter() - run_start, 3)
        append_jsonl(run_path / "metrics.jsonl", record)
        history.append(record)
        if t.checkpoint:
            save_atomic(checkpoint_state(cfg, networks, optimizers, schedulers, epoch + 1), run_path / "checkpoint.pt")
        progress.end_epoch(record)

    summary = build_summary(cfg, run_path, history, time.perf_counter() - run_start, train_seconds, images_trained,
                            data.info, precision.name, device, steps_per_epoch)
    write_json(run_path / "summary.json", summary)
    progress.finish(summary)
    return summary


def images_per_second(seen: list[int], seconds: float) -> float:
    return sum(seen) / seconds if seconds > 0 else 0.0


def checkpoint_state(cfg: Config, networks, optimizers, schedulers, epochs_done: int) -> dict[str, Any]:
    """Plain data and tensors only, so it loads with ``torch.load(weights_only=True)``."""
    return {
        "format": "ait-checkpoint-1",
        "config": cfg.to_dict(),
        "epochs_done": epochs_done,
        "networks": [net.state_dict() for net in networks],
        "optimizers": [opt.state_dict() for opt in optimizers],
        "schedulers": [sched.state_dict() for sched in schedulers],
    }


def build_summary(cfg: Config, run_path: Path, history: list[dict[str, Any]], wall: float, train_seconds: float,
                  images_trained: int, data_info: dict[str, Any], precision_name: str, device: torch.device,
                  steps_per_epoch: int) -> dict[str, Any]:
    """Final-epoch accuracy is the headline; the best epoch is reported beside it, labelled."""
    evaluated = [r for r in history if "test" in r]
    final = evaluated[-1]["test"]
    keys = [f"net{k}" for k in range(len(cfg.strategy.networks))] + (["ensemble"] if "ensemble" in final else [])
    entries = []
    for k, key in enumerate(keys):
        best = max(evaluated, key=lambda r: r["test"][key]["top1"])
        entries.append({
            "key": key,
            "name": cfg.strategy.networks[k] if key != "ensemble" else "ensemble",
            "final_top1": final[key]["top1"],
            "final_top5": final[key]["top5"],
            "best_top1": best["test"][key]["top1"],
            "best_epoch": best["epoch"],
        })
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
        "wall_seconds": round(wall, 2),
        "train_seconds": round(train_seconds, 2),
        "images_per_s": round(images_trained / train_seconds, 2) if train_seconds > 0 else None,
        "precision": precision_name,
        "device": str(device),
        "data": data_info,
    }


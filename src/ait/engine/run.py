"""Train a run from a config: data, networks, the branch trainer, evaluation, the run directory.

From the command line::

    ait train configs/cpu/cifar10_resnet20_ait.yaml --set train.epochs=5
    ait train --resume runs/cpu_cifar10_resnet20_ait/seed0          # continue an interrupted run
    torchrun --nproc_per_node=8 -m ait train configs/paper/table1_cifar100_resnet32_ait.yaml
    torchrun --nproc_per_node=8 -m ait train configs/paper/table1_imagenet_resnet50_ait.yaml \
        --set data.root=/datasets/imagenet                              # ImageFolder train/ + val/

From Python::

    import ait
    summary = ait.train("configs/cpu/cifar10_resnet20_ait.yaml", overrides=["train.epochs=2"])
    summary["networks"][0]["final_top1"]

A run whose directory holds a checkpoint but no summary is continued where it stopped, provided
the config is the same (differing keys are listed and the run is refused otherwise). Resuming is
exact: the views of each step are seeded by (seed, epoch, step) (image folders: by (seed, epoch,
sample, view)), the sampler by (seed, epoch), and the checkpoint holds the optimisers, schedules,
RNG states and the partial sums of the epoch. Where batches come from -- arrays on the device or
image files decoded by loader workers -- is :mod:`ait.engine.streams`'s business.
"""

from __future__ import annotations

import json
import shutil
import signal
import sys
import time
from contextlib import ExitStack, closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ait import models
from ait import views as views_lib
from ait.config import RESUME_MAY_CHANGE, Config, config_differences, load_config
from ait.engine import distributed
from ait.engine.checkpoint import CheckpointError, capture_rng, load_checkpoint, restore_rng, save_checkpoint
from ait.engine.optim import build_optimizer, build_scheduler
from ait.engine.precision import resolve_device, resolve_precision
from ait.engine.progress import Progress
from ait.engine.rundir import (
    RunDirError,
    append_jsonl,
    default_run_dir,
    environment_record,
    prepare_run_dir,
    write_json,
    write_run_header,
)
from ait.engine.streams import build_stream, evaluate_sharded, pad_to_multiple, samples_per_step  # noqa: F401
from ait.engine.trainer import BranchTrainer, NonFiniteLossError

# Fields of a metrics record that measure time, not training: they differ between a resumed and an
# uninterrupted run; everything else is identical.
TIMING_FIELDS = ("images_per_s", "epoch_seconds", "eval_seconds", "wall_seconds")


class RunInterrupted(RuntimeError):
    """The run was stopped by a signal after saving a checkpoint."""

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.signum = signum


class RunFailed(RuntimeError):
    """The run cannot continue (too many non-finite losses)."""


def step_seed(seed: int, epoch: int, step: int) -> int:
    """Seed of the view generator for one step: a function of (seed, epoch, step) alone, so any
    step can be replayed without the generator's history (exact resume, reproducible views)."""
    return (seed * 1_000_003 + epoch) * 1_000_033 + step


@dataclass
class Position:
    """Where the run is, and the partial sums of the epoch in progress."""

    epoch: int = 0  # epoch in progress (0-based)
    step: int = 0  # next step of that epoch
    ce_sum: torch.Tensor | None = None  # (num_networks,) sum of per-step CE
    consistency_sum: torch.Tensor | None = None  # ()
    correct: torch.Tensor | None = None  # (num_networks,) correct training images
    seen: list[int] = field(default_factory=list)  # training images per network
    epoch_lr: float = 0.0  # learning rate at the start of the epoch (logged)
    epoch_seconds: float = 0.0  # training seconds spent in this epoch so far
    train_seconds: float = 0.0  # over the whole run
    wall_seconds: float = 0.0
    images_trained: int = 0
    nonfinite_skips: int = 0
    epoch_steps: int = 0  # steps of this epoch that trained (skipped non-finite steps do not)

    def add(self, stats) -> None:
        self.epoch_steps += 1
        if self.ce_sum is None:
            self.ce_sum, self.consistency_sum, self.correct = stats.ce, stats.consistency, stats.correct
            self.seen = list(stats.images)
        else:
            self.ce_sum = self.ce_sum + stats.ce
            self.consistency_sum = self.consistency_sum + stats.consistency
            self.correct = self.correct + stats.correct
            self.seen = [a + b for a, b in zip(self.seen, stats.images)]

    def next_epoch(self) -> None:
        self.epoch, self.step = self.epoch + 1, 0
        self.ce_sum = self.consistency_sum = self.correct = None
        self.seen, self.epoch_seconds, self.epoch_steps = [], 0.0, 0

    def to_state(self) -> dict[str, Any]:
        return {k: (v.detach().cpu() if isinstance(v, torch.Tensor) else v) for k, v in self.__dict__.items()}

    @classmethod
    def from_state(cls, state: dict[str, Any], device: torch.device) -> Position:
        pos = cls(**state)
        for name in ("ce_sum", "consistency_sum", "correct"):
            value = getattr(pos, name)
            if value is not None:
                setattr(pos, name, value.to(device))
        return pos


@contextmanager
def stop_on_signals():
    """Turn SIGINT / SIGTERM into a flag checked between steps, so the run can save and exit."""
    received: list[int] = []

    def handler(signum, frame):
        if received:  # a second signal: stop now
            raise KeyboardInterrupt
        received.append(signum)

    installed = {}
    try:
        for sig in (signal.SIGINT, signal.SIGTERM):
            installed[sig] = signal.signal(sig, handler)
    except ValueError:  # not the main thread: leave signals alone
        installed = {}
    try:
        yield received
    finally:
        for sig, old in installed.items():
            signal.signal(sig, old)


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


def train(
    config: Config | dict | str | Path,
    overrides: list[str] | tuple = (),
    run_dir: str | Path | None = None,
    overwrite: bool = False,
    resume: bool = False,
) -> dict[str, Any]:
    """Train (or continue) the run described by ``config``; write its run directory; return its summary."""
    cfg = load_config(config, overrides)
    ctx = distributed.init_distributed(cfg.train.dist_timeout_s)
    try:
        with ExitStack() as resources:  # data loader workers: shut down however the run ends
            return _train(cfg, ctx, run_dir, overwrite, resume, resources)
    finally:
        distributed.shutdown(ctx)


def _train(
    cfg: Config, ctx: distributed.DistContext, run_dir, overwrite: bool, resume: bool, resources: ExitStack
) -> dict[str, Any]:
    t, s = cfg.train, cfg.strategy
    if t.num_threads:
        torch.set_num_threads(t.num_threads)
    device = resolve_device(distributed.device_for(ctx, t.device))
    precision = resolve_precision(device, t.precision, t.channels_last)
    # In-memory arrays on the device, or an image folder streamed by loader workers (ait.engine.streams);
    # fails on bad data before anything is written.
    stream = resources.enter_context(closing(build_stream(cfg, ctx, device)))

    # Networks are built in order from the run's seed, so a seed fixes every initialisation.
    torch.manual_seed(cfg.seed)
    in_channels, num_classes = stream.in_channels, stream.num_classes
    networks = []
    for name in s.networks:
        net = models.create(name, num_classes=num_classes, in_channels=in_channels).to(device)
        if precision.channels_last:
            net = net.to(memory_format=torch.channels_last)
        networks.append(net)

    run_path = Path(run_dir or default_run_dir(cfg))
    # Rank 0 alone touches the directory; the others learn the outcome (or the error) from it.
    outcome: tuple[str, str] = ("ok", "")
    if ctx.is_main:
        try:
            resumed = open_run_directory(cfg, run_path, overwrite, resume)
            check_free_space(run_path, checkpoint_size_estimate(networks))
            outcome = ("resume" if resumed else "new", "")
        except (RunDirError, OSError) as err:
            outcome = ("error", str(err))
    outcome = ctx.broadcast(outcome)
    if outcome[0] == "error":
        raise RunDirError(outcome[1])
    state = load_checkpoint(run_path / "checkpoint.pt") if outcome[0] == "resume" else None
    if ctx.is_main and state is None:
        write_run_header(run_path, cfg, environment_record(device, precision.name))

    # Views made by the data loader ("rrc" of image folders) need no recipes: the trainer only normalises them.
    recipes = None if stream.premade else [views_lib.parse_recipe(v) for v in s.views]
    forwards = distributed.wrap_for_training(networks, ctx, device, t.sync_batchnorm)
    if t.compile:
        forwards = [torch.compile(forward) for forward in forwards]
    trainer = BranchTrainer(
        networks,
        recipes,
        s.branches(),
        cfg.consistency,
        precision,
        stream.mean,
        stream.std,
        forwards=forwards,
        network_names=s.networks,
    )

    steps_per_epoch = min(stream.num_batches, t.max_steps_per_epoch or stream.num_batches)
    optimizers = [build_optimizer(net, name, cfg.optim) for net, name in zip(networks, s.networks)]
    schedulers = [build_scheduler(opt, cfg.optim, steps_per_epoch, t.epochs) for opt in optimizers]
    generator = torch.Generator(device=device)

    history: list[dict[str, Any]] = []
    pos = Position(epoch_lr=optimizers[0].param_groups[0]["lr"])
    if state is not None:
        for net, w in zip(networks, state["networks"]):
            net.load_state_dict(w)
        for opt, o in zip(optimizers, state["optimizers"]):
            opt.load_state_dict(o)
        for sched, sc in zip(schedulers, state["schedulers"]):
            sched.load_state_dict(sc)
        restore_rng(state["rng"])
        pos = Position.from_state(state["position"], device)
        history = read_history(run_path / "metrics.jsonl", upto_epoch=pos.epoch, rewrite=ctx.is_main)

    def save(where: str) -> None:
        if ctx.is_main and t.checkpoint:
            save_checkpoint(
                {
                    "config": cfg.to_dict(),
                    "networks": [net.state_dict() for net in networks],
                    "optimizers": [opt.state_dict() for opt in optimizers],
                    "schedulers": [sched.state_dict() for sched in schedulers],
                    "position": pos.to_state(),
                    "rng": capture_rng(),
                    "saved_at": where,
                },
                run_path / "checkpoint.pt",
            )

    progress = Progress(
        t.progress if ctx.is_main else "none", total_epochs=t.epochs, steps_per_epoch=steps_per_epoch, name=cfg.name
    )
    progress.start(run_path, stream.info, precision.name, device, resumed_at=(pos.epoch, pos.step) if state else None)
    wall_start = time.perf_counter() - pos.wall_seconds
    with stop_on_signals() as signals:
        while pos.epoch < t.epochs:
            epoch = pos.epoch
            if pos.step == 0:
                pos.epoch_lr = optimizers[0].param_groups[0]["lr"]
            progress.begin_epoch(epoch, done=pos.step)
            resumed_from = time.perf_counter() - pos.epoch_seconds
            for step, batch in enumerate(stream.batches(epoch, start=pos.step), start=pos.step):
                if step >= steps_per_epoch:
                    break
                generator.manual_seed(step_seed(cfg.seed, epoch, step))  # the trainer's views (in-memory data)
                try:
                    stats = trainer.step(
                        batch.images,
                        batch.labels,
                        optimizers,
                        schedulers,
                        generator,
                        batch.shard,
                        premade=batch.premade,
                    )
                except NonFiniteLossError as err:
                    pos.nonfinite_skips += 1
                    where = f"epoch {epoch + 1}, step {step + 1}"
                    if pos.nonfinite_skips > t.max_nonfinite_skips:
                        pos.step = step
                        raise RunFailed(
                            f"{err} at {where}; {pos.nonfinite_skips} non-finite step(s) exceed "
                            f"train.max_nonfinite_skips={t.max_nonfinite_skips}. The last checkpoint "
                            f"is {run_path / 'checkpoint.pt'}"
                        ) from None
                    print(
                        f"[{cfg.name}] skipped {where}: {err} ({pos.nonfinite_skips}/{t.max_nonfinite_skips})",
                        file=sys.stderr,
                    )
                    for sched in schedulers:  # the schedule stays aligned with the step count
                        sched.step()
                    stats = None
                if stats is not None:
                    pos.add(stats)
                pos.step = step + 1
                pos.epoch_seconds = time.perf_counter() - resumed_from
                progress.step(step, stats, pos)
                if t.checkpoint_every_steps and pos.step % t.checkpoint_every_steps == 0 and pos.step < steps_per_epoch:
                    save(f"epoch {epoch + 1} step {pos.step}")
                stop = ctx.max_int(signals[0] if signals else 0, device)  # any rank's signal stops all ranks
                if stop:
                    pos.wall_seconds = time.perf_counter() - wall_start
                    save(f"signal {stop} at epoch {epoch + 1} step {pos.step}")
                    progress.close()
                    raise RunInterrupted(
                        f"stopped by signal {stop} at epoch {epoch + 1}, step {pos.step}; the checkpoint "
                        f"is saved: continue with `ait train --resume {run_path}`",
                        stop,
                    )
            record = finish_epoch(cfg, ctx, pos, networks, trainer, stream, precision, epoch, wall_start)
            history.append(record)
            if ctx.is_main:
                append_jsonl(run_path / "metrics.jsonl", record)
            pos.next_epoch()
            pos.wall_seconds = time.perf_counter() - wall_start
            save(f"end of epoch {epoch + 1}")
            progress.end_epoch(record)

    pos.wall_seconds = time.perf_counter() - wall_start
    summary = build_summary(
        cfg, run_path, history, pos, stream.info, precision.name, device, steps_per_epoch, ctx.world_size
    )
    if ctx.is_main:
        write_json(run_path / "summary.json", summary)
    progress.finish(summary)
    return summary


def finish_epoch(
    cfg: Config, ctx, pos: Position, networks, trainer: BranchTrainer, stream, precision, epoch: int, wall_start: float
) -> dict[str, Any]:
    """The epoch's metrics record (reduced over ranks), with a test evaluation when it is due."""
    t = cfg.train
    n_nets, device = len(networks), precision.device
    zeros = torch.zeros(n_nets, device=device)
    ce = ctx.all_reduce_sum(pos.ce_sum if pos.ce_sum is not None else zeros) / ctx.world_size
    cons = ctx.all_reduce_sum(pos.consistency_sum if pos.consistency_sum is not None else zeros.sum()) / ctx.world_size
    correct = ctx.all_reduce_sum(pos.correct if pos.correct is not None else zeros).tolist()
    seen_local = torch.tensor(pos.seen or [0] * n_nets, dtype=torch.float64, device=device)
    seen = ctx.all_reduce_sum(seen_local).tolist()
    steps = max(pos.epoch_steps, 1)
    images = int(sum(seen))
    pos.train_seconds += pos.epoch_seconds
    pos.images_trained += images
    record: dict[str, Any] = {
        "epoch": epoch + 1,
        "lr": pos.epoch_lr,
        "train_ce": [round(v / steps, 6) for v in ce.tolist()],
        "train_consistency": round(cons.item() / steps, 6),
        "train_top1": [round(100.0 * c / n, 4) if n else None for c, n in zip(correct, seen)],
        "images_per_s": round(images / pos.epoch_seconds, 2) if pos.epoch_seconds > 0 else None,
        "epoch_seconds": round(pos.epoch_seconds, 3),
    }
    if (epoch + 1) % t.eval_every == 0 or epoch + 1 == t.epochs:
        eval_start = time.perf_counter()
        record["test"] = stream.evaluate(networks, trainer.prepare_eval, precision, t.eval_batch_size)
        record["eval_seconds"] = round(time.perf_counter() - eval_start, 3)
    record["wall_seconds"] = round(time.perf_counter() - wall_start, 3)
    return record


def read_history(path: Path, upto_epoch: int, rewrite: bool) -> list[dict[str, Any]]:
    """Records of the epochs a checkpoint covers; later lines (written after the checkpoint that a
    crash then lost) are dropped from the file, since those epochs are trained again."""
    if not path.exists():
        return []
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    kept = [r for r in records if r["epoch"] <= upto_epoch]
    if rewrite and len(kept) != len(records):
        path.write_text("".join(json.dumps(r) + "\n" for r in kept))
    return kept


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
    evaluated = [r for r in history if "test" in r]
    final = evaluated[-1]["test"]
    keys = [f"net{k}" for k in range(len(cfg.strategy.networks))] + (["ensemble"] if "ensemble" in final else [])
    entries = []
    for k, key in enumerate(keys):
        best = max(evaluated, key=lambda r: r["test"][key]["top1"])
        entries.append(
            {
                "key": key,
                "name": cfg.strategy.networks[k] if key != "ensemble" else "ensemble",
                "final_top1": final[key]["top1"],
                "final_top5": final[key]["top5"],
                "best_top1": best["test"][key]["top1"],
                "best_epoch": best["epoch"],
            }
        )
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

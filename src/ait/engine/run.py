"""Train a run from a config: data, networks, the branch trainer, evaluation, the run directory.

From the command line::

    ait train configs/cpu/cifar10_resnet20_ait.yaml --set train.epochs=5
    ait train --resume runs/cpu_cifar10_resnet20_ait/seed0          # continue an interrupted run
    torchrun --nproc_per_node=8 -m ait train configs/paper/table1_cifar100_resnet32_ait.yaml
    torchrun --nproc_per_node=8 -m ait train configs/paper/table1_imagenet_resnet50_ait.yaml \\
        --set data.root=/datasets/imagenet                              # ImageFolder train/ + val/

From Python (a smoke run on generated images: 512 samples, 64 a step)::

    >>> import ait
    >>> summary = ait.train("configs/smoke/synthetic_resnet20_baseline.yaml", ["train.epochs=1", "out_dir=quick"])
    >>> summary["steps_per_epoch"], len(summary["networks"])
    (8, 1)

The loop reads top to bottom, as torchvision's references do: :func:`train` sets up (device,
data, networks, the run directory, the trainer), :meth:`RunLoop.restore` puts a resumed run back,
and :meth:`RunLoop.run` trains epoch after epoch (:meth:`RunLoop.train_one_epoch`) of guarded
steps (:meth:`RunLoop.guarded_step`), writing a metrics line and a checkpoint (:meth:`RunLoop.save`)
after each epoch.

A run whose directory holds a checkpoint but no summary is continued where it stopped, provided
the config is the same (differing keys are listed and the run is refused otherwise). Resuming is
exact: the views of each step are seeded by (seed, epoch, step) (image folders: by (seed, epoch,
sample, view)), the sampler by (seed, epoch), and the checkpoint holds the optimisers, schedules,
RNG states and the partial sums of the epoch (:class:`ait.engine.state.TrainingState`). Where
batches come from -- arrays on the device or image files decoded by loader workers -- is
:mod:`ait.engine.streams`'s business.
"""

from __future__ import annotations

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
from ait.callbacks import Callback, Callbacks, RunInfo
from ait.config import (
    Config,
    ModelOptions,
    UnknownModelError,
    config_fingerprint,
    data_paths_written,
    load_config,
    resolve_data_paths,
)
from ait.engine import distributed, loggers
from ait.engine.checkpoint import load_checkpoint, save_checkpoint
from ait.engine.graphs import GraphedStep, check_cuda_graphs
from ait.engine.lock import RunLock, RunLocked
from ait.engine.optim import build_optimizer, build_scheduler, schedule_notes
from ait.engine.progress import Progress
from ait.engine.records import TIMING_FIELDS, build_summary, finish_epoch, read_history
from ait.engine.rundir import (
    NotARunDirectory,
    RunDirError,
    check_data_unchanged,
    check_free_space,
    check_run_directory,
    checkpoint_size_estimate,
    default_run_dir,
    environment_record,
    import_hint,
    keep_trained_normalisation,
    model_input,
    network_sources,
    open_run_directory,
    unwritable,
    write_run_header,
)
from ait.engine.state import Position, TrainingState, step_seed
from ait.engine.streams import build_stream, samples_per_step
from ait.engine.trainer import BranchTrainer, NonFiniteLossError, NonFiniteWeightsError
from ait.runtime.files import append_jsonl, write_json
from ait.runtime.precision import Precision, resolve_device, resolve_precision

__all__ = ["TIMING_FIELDS", "RunFailed", "RunInterrupted", "RunLoop", "samples_per_step", "step_seed", "train"]


class RunInterrupted(RuntimeError):
    """The run was stopped by a signal after saving a checkpoint; `ait` exits with 128 + the signal."""

    exit_label = ""

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.signum = signum

    @property
    def exit_status(self) -> int:
        return 128 + self.signum


class RunFailed(RuntimeError):
    """The run cannot continue (too many non-finite losses); `ait` exits with status 1."""

    exit_status, exit_label = 1, "run failed: "


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


@contextmanager
def told_how_it_ends(callbacks: Callbacks):
    """The loggers, told of an exception that ends the run (stopped: by a signal, so it can be
    resumed; otherwise failed), and closed however it ends."""
    try:
        yield callbacks
    except BaseException as err:
        try:
            callbacks.on_run_error(err, stopped=isinstance(err, (RunInterrupted, KeyboardInterrupt)))
        except Exception as logger_error:  # the run's own error is what the user must see
            print(f"ait: a logger failed to record how the run ended: {logger_error}", file=sys.stderr)
        raise
    finally:
        callbacks.close()


def train(
    config: Config | dict | str | Path,
    overrides: list[str] | tuple = (),
    run_dir: str | Path | None = None,
    overwrite: bool = False,
    resume: bool = False,
    allow_data_change: bool = False,
    callbacks: list[Callback] = (),
) -> dict[str, Any]:
    """Train (or continue) the run described by ``config``; write its run directory; return its summary.

    overwrite: replace a run directory holding a run. resume: the directory must hold a checkpoint
    to continue (otherwise one is continued when found). allow_data_change: continue although the
    data's fingerprint differs from the checkpoint's. callbacks: :class:`ait.callbacks.Callback`
    objects called beside the loggers of ``train.loggers`` (rank 0 only).
    """
    try:
        written = load_config(config, overrides)
    except UnknownModelError as err:  # a plugin's model resumed without its module: say which
        if resume and run_dir is not None:
            err.args = (f"{err}{import_hint(Path(run_dir), err.model)}",)
        raise
    # Absolute data paths from here on (config.yaml too): the run can be evaluated and resumed from
    # any folder; env.json keeps the paths as written.
    cfg = resolve_data_paths(written)
    ctx = distributed.init_distributed(cfg.train.dist_timeout_s)
    finished = False
    try:
        with ExitStack() as resources:  # the run directory's lock, data loader workers: released however it ends
            opening = Opening(overwrite, resume, allow_data_change, data_paths_written(written), tuple(callbacks))
            summary = _train(cfg, ctx, Path(run_dir or default_run_dir(cfg)), opening, resources)
        finished = True
        return summary
    finally:
        distributed.shutdown(ctx, finished)


@dataclass(frozen=True)
class Opening:
    """How a run directory may be opened (replaced, only resumed, resumed on changed data), the
    data paths as the user wrote them (for a new run's env.json), and callbacks given from Python."""

    overwrite: bool = False
    resume: bool = False
    allow_data_change: bool = False
    data_paths: dict = field(default_factory=dict)
    callbacks: tuple = ()


def _train(cfg: Config, ctx, run_path: Path, opening: Opening, resources: ExitStack) -> dict[str, Any]:
    if cfg.train.num_threads:
        torch.set_num_threads(cfg.train.num_threads)
    device = resolve_device(distributed.device_for(ctx, cfg.train.device))
    check_cuda_graphs(cfg, device, ctx.world_size)
    precision = resolve_precision(device, cfg.train.precision, cfg.train.channels_last)
    # In-memory arrays on the device, or an image folder streamed by loader workers (ait.engine.streams);
    # fails on bad data before anything is written.
    stream = resources.enter_context(closing(build_stream(cfg, ctx, device)))
    # A resumed run imports no module its config names, and needs no initial weights: its checkpoint
    # has them. Otherwise they are loaded before the run directory is touched, so a file that does
    # not fit leaves nothing behind (a run found to continue then overwrites them from its checkpoint).
    networks = build_networks(cfg, stream, precision, fresh=not opening.resume)
    if not opening.resume:
        load_initial_weights(cfg, networks)
    fingerprints = {"config": config_fingerprint(cfg), "data": stream.info.get("fingerprint")}
    header = {"fingerprints": fingerprints, "networks": network_sources(cfg), "model_input": model_input(stream)}
    lock, saved = open_run(cfg, ctx, run_path, opening, networks, precision, header)
    if lock is not None:
        resources.callback(lock.release)
    if saved is not None:
        keep_trained_normalisation(stream, run_path, cfg.name if ctx.is_main else None)
    trainer = build_trainer(cfg, ctx, networks, stream, precision)
    loop = RunLoop(cfg, ctx, stream, trainer, precision, run_path, lock, fingerprints)
    if ctx.is_main:  # rank 0 alone logs
        loop.callbacks = resources.enter_context(told_how_it_ends(loggers.build(cfg.train.loggers, opening.callbacks)))
    if saved is not None:
        loop.restore(saved)
    return loop.run()


def build_networks(cfg: Config, stream, precision: Precision, fresh: bool = True) -> list[torch.nn.Module]:
    """The run's networks on its device, each checked once on the data's shape and the consistency
    layer; built in order from the run's seed, so a seed fixes every initialisation. fresh: a new
    run (timm's pretrained weights are loaded, an import-path model may import its module)."""
    torch.manual_seed(cfg.seed)
    networks = []
    for name in cfg.strategy.networks:
        options = cfg.models.get(name, ModelOptions())
        net = models.create(
            name,
            num_classes=stream.num_classes,
            in_channels=stream.in_channels,
            kwargs=options.kwargs,
            pretrained=options.pretrained and fresh,
            allow_import=fresh,
        )
        if options.split_bn:  # one BatchNorm per view: the trainer feeds a network its views view-major
            s = cfg.strategy
            models.split_bn.convert(net, s.definition.views_per_network(len(s.networks), len(s.views)))
            models.split_bn.check_split(net, name)
        net = net.to(precision.device)
        if precision.channels_last:
            net = net.to(memory_format=torch.channels_last)
        models.check_outputs(net, name, stream.num_classes, stream.input_shape, cfg.consistency.layer)
        networks.append(net)
    return networks


def load_initial_weights(cfg: Config, networks: list[torch.nn.Module]) -> None:
    """The ``models.NAME.weights`` files, loaded into the networks of a run that is not resumed."""
    for name, net in zip(cfg.strategy.networks, networks):
        options = cfg.models.get(name)
        if options is not None and options.weights is not None:
            kept = models.load_weights(net, options.weights, name, replace_head=options.replace_head)
            if kept:
                print(
                    f"[{cfg.name}] {name}: head {', '.join(kept)} replaced (fresh init) for this data", file=sys.stderr
                )


def open_run(cfg: Config, ctx, run_path: Path, opening: Opening, networks, precision: Precision, header: dict):
    """Lock and open the run directory (rank 0 alone touches it; the others learn the outcome, or
    the error, from it). Returns (the lock, or None on other ranks; the checkpoint to resume from, or
    None for a new run, whose config and environment (with ``header``: fingerprints, the networks'
    sources, the model input) are then written)."""
    outcome: tuple[str, str] = ("ok", "")
    lock, error, resumed = None, None, None
    if ctx.is_main:
        try:
            # Before the lock file: never write into a directory holding files that are not ours.
            check_run_directory(run_path, complete=False)
            lock = RunLock(run_path).acquire()
            resumed = open_run_directory(cfg, run_path, opening.overwrite, opening.resume)
            if resumed is not None:
                hint = "pass --allow-data-change to go on with the data as it is now, or --overwrite to start again"
                saved = resumed.get("fingerprints", {}).get("data") or {}
                now = header["fingerprints"]["data"] or {}
                allowed, noise = opening.allow_data_change, cfg.data.label_noise
                check_data_unchanged(saved, now, str(run_path), allowed, hint, noise)
            if cfg.train.checkpoint:  # a run that writes no checkpoint needs no room for one
                check_free_space(run_path, checkpoint_size_estimate(networks))
            outcome = ("resume" if resumed else "new", "")
        except (RunDirError, RunLocked, OSError) as err:
            outcome, error = ("error", str(err)), err
            if lock is not None:  # a directory refused as not ours keeps no lock file of ours either
                lock.release(discard=isinstance(err, NotARunDirectory))
    outcome = ctx.broadcast(outcome)
    if outcome[0] == "error":
        if isinstance(error, (RunDirError, RunLocked)):
            raise error
        raise unwritable(run_path, error) if isinstance(error, OSError) else RunDirError(outcome[1])
    if outcome[0] == "resume":  # rank 0 has read it already
        return lock, resumed if ctx.is_main else load_checkpoint(run_path / "checkpoint.pt")
    if ctx.is_main:
        env = {**environment_record(precision.device, precision.name), **header, "data_paths": opening.data_paths}
        write_run_header(run_path, cfg, env)
    return lock, None


def build_trainer(cfg: Config, ctx, networks, stream, precision: Precision) -> BranchTrainer:
    """The branch trainer of the run's strategy (:mod:`ait.strategies`), with DDP-wrapped forwards."""
    s = cfg.strategy
    # Views made by the data loader ("rrc" of image folders) need no recipes: the trainer only normalises them.
    recipes = None if stream.premade else [views_lib.parse_recipe(v) for v in s.views]
    forwards = distributed.wrap_for_training(networks, ctx, precision.device, cfg.train.sync_batchnorm)
    if cfg.train.compile:
        forwards = [torch.compile(forward) for forward in forwards]
    return BranchTrainer(
        networks,
        recipes,
        s.branches(),
        cfg.consistency,
        precision,
        stream.mean,
        stream.std,
        forwards=forwards,
        network_names=s.networks,
        ce_branches=s.definition.ce_branches(len(s.networks), len(s.views)),
        label_smoothing=cfg.train.label_smoothing,
    )


class RunLoop:
    """The training loop of one run: epochs of guarded steps, a metrics line and a checkpoint per epoch."""

    def __init__(
        self,
        cfg: Config,
        ctx,
        stream,
        trainer: BranchTrainer,
        precision: Precision,
        run_path: Path,
        lock: RunLock | None = None,
        fingerprints: dict | None = None,
    ):
        self.cfg, self.ctx, self.stream, self.trainer = cfg, ctx, stream, trainer
        self.precision, self.run_path = precision, run_path
        self.lock, self.fingerprints = lock, fingerprints or {}
        t = cfg.train
        self.steps_per_epoch = min(stream.num_batches, t.max_steps_per_epoch or stream.num_batches)
        networks = trainer.networks
        optimizers = [build_optimizer(net, name, cfg.optim) for net, name in zip(networks, cfg.strategy.networks)]
        schedulers = [build_scheduler(opt, cfg.optim, self.steps_per_epoch, t.epochs) for opt in optimizers]
        for note in schedule_notes(cfg.optim, t.epochs) if ctx.is_main else []:
            print(f"[{cfg.name}] {note}", file=sys.stderr)  # every run that sets it, not once a process
        self.state = TrainingState(cfg, networks, optimizers, schedulers, Position(), precision.device)
        self.state.position.epoch_lr = self.state.lr
        self.generator = torch.Generator(device=precision.device)  # the trainer's views (in-memory data)
        # train.cuda_graphs: the same step, captured once and replayed (ait.engine.graphs)
        say = lambda text: print(f"[{cfg.name}] {text}", file=sys.stderr)  # noqa: E731
        self.take_step = GraphedStep(trainer, log=say) if t.cuda_graphs else trainer.step
        self.history: list[dict[str, Any]] = []
        self.callbacks: Callback = Callbacks([])  # the loggers (train() sets them on rank 0)
        self._logged_at = 0.0  # when the loggers were last given per-step scalars
        self.resumed = False
        self.saved_at = ""  # where in the run the last checkpoint was written
        self.wall_start = 0.0
        self.progress = Progress(
            t.progress if ctx.is_main else "none",
            total_epochs=t.epochs,
            steps_per_epoch=self.steps_per_epoch,
            name=cfg.name,
        )

    @property
    def pos(self) -> Position:
        return self.state.position

    def restore(self, saved: dict[str, Any]) -> None:
        """Continue from a checkpoint: the training state, and the metrics of the epochs it covers."""
        self.state.load_state_dict(saved)
        self.saved_at = str(saved.get("saved_at", "an earlier session"))
        self.history = read_history(
            self.run_path / "metrics.jsonl", upto_epoch=self.pos.epoch, rewrite=self.ctx.is_main
        )
        self.resumed = True

    def run(self) -> dict[str, Any]:
        """Train the remaining epochs; write and return the summary."""
        pos = self.pos
        resumed_at = (pos.epoch, pos.step) if self.resumed else None
        self.progress.start(self.run_path, self.stream.info, self.precision.name, self.precision.device, resumed_at)
        self.wall_start = time.perf_counter() - pos.wall_seconds
        info = RunInfo(
            self.run_path, self.cfg.name, self.cfg.to_dict(), self.global_step, self.steps_per_epoch, self.resumed
        )
        self.callbacks.on_run_start(info)
        # The loggers' speed counts from here: their set-up (W&B's takes seconds) trained nothing.
        self._logged_at, self._logged_step = time.perf_counter(), self.global_step
        with stop_on_signals() as signals:
            while self.pos.epoch < self.cfg.train.epochs:
                self.train_one_epoch(signals)
                self.end_epoch()
        self.pos.wall_seconds = time.perf_counter() - self.wall_start
        summary = build_summary(
            self.cfg,
            self.run_path,
            self.history,
            self.pos,
            self.stream.info,
            self.precision.name,
            self.precision.device,
            self.steps_per_epoch,
            self.ctx.world_size,
        )
        if self.ctx.is_main:
            write_json(self.run_path / "summary.json", summary)
        self.callbacks.on_run_end(summary)
        self.progress.finish(summary)
        return summary

    def train_one_epoch(self, signals: list[int]) -> None:
        """The steps of the epoch in progress from ``pos.step`` on, saving where the config says."""
        pos, t = self.pos, self.cfg.train
        epoch = pos.epoch
        if pos.step == 0:
            pos.epoch_lr = self.state.lr
        self.progress.begin_epoch(epoch, done=pos.step)
        resumed_from = time.perf_counter() - pos.epoch_seconds
        for step, batch in enumerate(self.stream.batches(epoch, start=pos.step), start=pos.step):
            if step >= self.steps_per_epoch:
                break
            log = (epoch * self.steps_per_epoch + step + 1) % t.log_every == 0
            stats = self.guarded_step(epoch, step, batch, grad_norm=log)
            if stats is not None:
                pos.add(stats)
            pos.step = step + 1
            if log and stats is not None:
                self.log_step(stats)
            pos.epoch_seconds = time.perf_counter() - resumed_from
            self.progress.step(step, stats, pos)
            every = t.checkpoint_every_steps
            if every and pos.step % every == 0 and pos.step < self.steps_per_epoch:
                self.save(f"epoch {epoch + 1} step {pos.step}")
            self.stop_if_signalled(signals, epoch)

    @property
    def global_step(self) -> int:
        """Steps done since the run began (the loggers' x axis)."""
        return self.pos.epoch * self.steps_per_epoch + self.pos.step

    def log_step(self, stats) -> None:
        """The per-step scalars of the loggers: learning rate, each loss term, gradient norms, speed."""
        now = time.perf_counter()
        names = [f"net{k}" for k in range(len(self.trainer.networks))]
        scalars = {"lr": self.state.lr, "loss/consistency": float(stats.consistency)}
        scalars.update({f"loss/ce/{n}": v for n, v in zip(names, stats.ce.tolist())})
        if stats.grad_norm is not None:
            scalars.update({f"grad_norm/{n}": v for n, v in zip(names, stats.grad_norm.tolist())})
        # The steps since the last log: log_every, or fewer right after a resume.
        images = (self.global_step - self._logged_step) * sum(stats.images)
        scalars["images_per_s"] = images / max(now - self._logged_at, 1e-9)
        self._logged_at, self._logged_step = now, self.global_step
        self.callbacks.on_step(self.global_step, scalars)

    def guarded_step(self, epoch: int, step: int, batch, grad_norm: bool = False) -> Any:
        """One training step; a non-finite loss or gradient skips it (returns None: the trainer
        applied no update, and the schedules stepped) or, past the allowance, fails the run."""
        self.generator.manual_seed(step_seed(self.cfg.seed, epoch, step))
        state = self.state
        try:
            return self.take_step(
                batch.images, batch.labels, state.optimizers, state.schedulers, self.generator, batch.shard, grad_norm
            )
        except NonFiniteWeightsError as err:
            raise RunFailed(f"{err} at epoch {epoch + 1}, step {step + 1}. {self.last_checkpoint()}") from None
        except NonFiniteLossError as err:
            pos, allowed = self.pos, self.cfg.train.max_nonfinite_skips
            pos.nonfinite_skips += 1
            where = f"epoch {epoch + 1}, step {step + 1}"
            if pos.nonfinite_skips > allowed:
                pos.step = step
                raise RunFailed(
                    f"{err} at {where}; {pos.nonfinite_skips} non-finite step(s) exceed "
                    f"train.max_nonfinite_skips={allowed}. {self.last_checkpoint()}"
                ) from None
            print(f"[{self.cfg.name}] skipped {where}: {err} ({pos.nonfinite_skips}/{allowed})", file=sys.stderr)
            return None

    def last_checkpoint(self) -> str:
        """Where the last good state is, for the message of a failed run (a file that exists, or none)."""
        path = self.run_path / "checkpoint.pt"
        if self.saved_at and path.is_file():
            return f"The last checkpoint, {path} (saved at {self.saved_at}), is unaffected."
        return "No checkpoint was written before it."

    def stop_if_signalled(self, signals: list[int], epoch: int) -> None:
        """Save and raise RunInterrupted when any rank received SIGINT / SIGTERM."""
        stop = self.ctx.max_int(signals[0] if signals else 0, self.precision.device)
        if stop:
            self.pos.wall_seconds = time.perf_counter() - self.wall_start
            self.save(f"signal {stop} at epoch {epoch + 1} step {self.pos.step}")
            self.progress.close()
            where = f"stopped by signal {stop} at epoch {epoch + 1}, step {self.pos.step}"
            if self.cfg.train.checkpoint:
                raise RunInterrupted(
                    f"{where}; the checkpoint is saved: continue with `ait train --resume {self.run_path}`", stop
                )
            raise RunInterrupted(
                f"{where}; no checkpoint was written (train.checkpoint=false), so it cannot be resumed", stop
            )

    def end_epoch(self) -> None:
        """The epoch's metrics record (and test evaluation when due), then a checkpoint."""
        pos = self.pos
        epoch = pos.epoch
        t = self.trainer
        record = finish_epoch(
            self.cfg, self.ctx, pos, t.networks, t, self.stream, self.precision, epoch, self.wall_start
        )
        self.history.append(record)
        if self.ctx.is_main:
            append_jsonl(self.run_path / "metrics.jsonl", record)
        self.callbacks.on_epoch_end(epoch, record)
        pos.next_epoch()
        pos.wall_seconds = time.perf_counter() - self.wall_start
        self.save(f"end of epoch {epoch + 1}")
        self.progress.end_epoch(record)

    def save(self, where: str) -> None:
        """Write the checkpoint (rank 0, when checkpoints are on); ``where`` says at what point."""
        if self.ctx.is_main and self.cfg.train.checkpoint:
            state = {**self.state.state_dict(), "saved_at": where, "fingerprints": self.fingerprints}
            save_checkpoint(state, self.run_path / "checkpoint.pt")
            self.saved_at = where

"""One GPU, one command, a few minutes: what one `ait` run gets out of the device (issue 21).

    python3 benchmarks/gpu.py --out results/                       # on a GPU machine: about 5 minutes
    python3 benchmarks/gpu.py --budget-s 120 --only resnet32       # a part of it, inside 2 minutes
    .venv/bin/python benchmarks/gpu.py --device cpu --smoke --out /tmp/gpu_smoke   # try it on a CPU

Rows, in order of importance (a row that no longer fits in --budget-s is recorded as skipped):

1. ResNet-32 (CIFAR, 32x32), AIT with two "rp" views and the baseline, 128 images per network per
   step (the paper's), eager: ait's real training step (bench_train.ait_step_fn: BranchTrainer with
   the fused SGD, the non-finite guard, views made on the device);
   and the same steps captured in a CUDA graph and replayed, as ``train.cuda_graphs`` runs them
   (ait.engine.graphs: three eager warm-up steps, then one replay per step);
2. the same AIT step with ``torch.compile`` on the forward pass, as ``train.compile`` does it (in a
   child process under a timeout; its cold compile time is reported apart);
3. ResNet-32 at 512, ResNet-20 at 128 and 512, AIT and baseline, eager and graph-captured;
4. ResNet-20 AIT at 128 in 2, 4 and 8 processes on the one GPU at once (aggregate images/s; no MPS);
5. ResNet-50 (the zoo's ImageNet model) at 224x224 from uint8 data on the device, AIT (two "rrc"
   views made on the device) and baseline, 256 images per step;
6. WRN-16-4 AIT at 128, eager;
7. the image-folder loader alone (bench_imagefolder's generated JPEGs; 8 and 16 workers), samples/s;
8. ResNet-20 AIT at 128 images per seed, 4 and 16 seeds stacked into one network in one process
   (ait.models.stacked: one grouped convolution per layer under vmap), eager and graph-captured
   (aggregate images/s, against row 4's processes);
9. the processes of row 4 again under NVIDIA's MPS daemon, where it starts (stopped after each row);
10. ResNet-32 AIT at 128 with ``torch.compile(mode="reduce-overhead")`` (CUDA graphs), if time is left.

Rows of one group are measured interleaved (A B A B ...): warm-up steps untimed, then each row
runs ``steps`` steps per repeat (calibrated to about --repeat-s seconds), CUDA synchronised
before and after, and the medians of the repeats are reported. ``peak_mem_mb`` is the row's own
GPU memory at its peak (model, optimiser, its copy of the data, activations), measured by
``torch.cuda.max_memory_allocated`` over its warm-up; null on the CPU (the process's peak RSS is in
the JSON's meta). Each step's FLOPs are counted once with FlopCounterMode and reported as achieved
FLOP/s and as a fraction of the bf16 matmul rate measured in the same run. Precision is ait's
default on the device (bf16 autocast + channels_last on CUDA: ait.runtime.precision).

A row that fails records its error and the run goes on. JSON (gpu_bench.json) and the Markdown
table (gpu_bench.md) are rewritten into --out after every group, so a run cut short keeps what it
measured. --only / --skip take words matched against a row's group, model, strategy or mode
(groups: resnet32-128, compile, cifar, procs, resnet50, wrn16_4, loader, stacked, procs-mps, compile-ro; modes: eager,
graph, compile, compile-ro, loader), e.g. ``--only resnet20`` or ``--skip procs compile``.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_imagefolder import make_folder, time_loader  # noqa: E402
from bench_train import ROOT, ait_step_fn, high_water_mib, load_images, sync  # noqa: E402

from ait.data import scan_image_folder  # noqa: E402

RESULTS_JSON, RESULTS_MD = "gpu_bench.json", "gpu_bench.md"
RESERVE_S = 3.0  # kept back from the budget for writing the results


# --- sizes: the real run and --smoke ---------------------------------------------------------------


@dataclass(frozen=True)
class Sizes:
    """Everything --smoke shrinks. ``est`` is a row's expected seconds by kind, for the budget."""

    smoke: bool
    cifar_batches: tuple[int, int]  # images per network per step: the paper's and a large one
    cifar_samples: int  # in-memory data set (a multiple of every batch: no partial last batch)
    rn50_size: int
    rn50_batch: int
    rn50_samples: int
    warmup: int
    repeats: int
    repeat_s: float  # target seconds per timed repeat of a row
    min_steps: int
    max_steps: int
    proc_counts: tuple[int, ...]
    stacked_seeds: tuple[int, ...]  # networks stacked into one (ait.models.stacked)
    proc_duration_s: float
    loader_images: int
    loader_wh: tuple[int, int]
    loader_workers: tuple[int, ...]
    loader_batch: int
    loader_epochs: int
    loader_repeats: int
    matmul_n: int
    est: dict = field(default_factory=dict)


def sizes_for(args) -> Sizes:
    """The run's sizes, with --repeats and --repeat-s where given."""
    sz = make_sizes(args.smoke, args.device)
    if args.repeats is not None:
        sz = dataclasses.replace(sz, repeats=args.repeats)
    if args.repeat_s is not None:
        sz = dataclasses.replace(sz, repeat_s=args.repeat_s)
    return sz


def make_sizes(smoke: bool, device: str) -> Sizes:
    cuda = device.startswith("cuda")
    if smoke:
        return Sizes(
            smoke=True,
            cifar_batches=(16, 32),
            cifar_samples=256,
            rn50_size=64,
            rn50_batch=16,
            rn50_samples=64,
            warmup=1,
            repeats=2,
            repeat_s=0.0,
            min_steps=2,
            max_steps=2,
            proc_counts=(2,),
            stacked_seeds=(2,),
            proc_duration_s=1.0,
            loader_images=8,
            loader_wh=(96, 72),
            loader_workers=(0, 1),
            loader_batch=4,
            loader_epochs=1,
            loader_repeats=2,
            matmul_n=4096 if cuda else 1024,
            est={"eager": 3, "graph": 3, "resnet50": 6, "compile": 25, "compile-ro": 40, "procs": 20, "loader": 10},
        )
    return Sizes(
        smoke=False,
        cifar_batches=(128, 512),
        cifar_samples=16384,
        rn50_size=224,
        rn50_batch=256,
        rn50_samples=1024,
        warmup=10,
        repeats=5,
        repeat_s=0.5,
        min_steps=5,
        max_steps=400,
        proc_counts=(2, 4, 8),
        stacked_seeds=(4, 16),
        proc_duration_s=6.0,
        loader_images=1024,
        loader_wh=(500, 375),
        loader_workers=(8, 16),
        loader_batch=32,
        loader_epochs=2,
        loader_repeats=3,
        matmul_n=8192 if cuda else 2048,
        est={"eager": 7, "graph": 7, "resnet50": 12, "compile": 100, "compile-ro": 120, "procs": 25, "loader": 35},
    )


# --- rows ------------------------------------------------------------------------------------------


@dataclass
class Row:
    """One measurement and its result (the JSON's schema)."""

    group: str
    model: str
    strategy: str  # "ait" (two views), "baseline" (one view) or "loader"
    batch: int  # images per network per step (the loader: samples per batch)
    mode: str  # "eager", "graph" (train.cuda_graphs), "compile", "compile-ro" or "loader"
    image_size: int = 32
    processes: int = 1
    seeds: int = 1  # networks stacked into one in the one process
    mps: bool = False  # the processes run under NVIDIA's MPS daemon (started for the row, stopped after)
    workers: int | None = None
    est_s: float = 0.0
    status: str = "pending"  # "ok", "error" or "skipped"
    error: str | None = None
    images_per_s: float | None = None
    samples_per_s: float | None = None
    ms_per_step: float | None = None
    peak_mem_mb: float | None = None
    flops_per_step: float | None = None
    achieved_tflop_s: float | None = None
    matmul_fraction: float | None = None
    compile_s: float | None = None
    steps: int | None = None
    repeats: int | None = None
    note: str | None = None

    @property
    def label(self) -> str:
        extra = f" x{self.processes} processes" if self.processes > 1 else ""
        extra += ", MPS" if self.mps else ""
        extra += f" x{self.seeds} seeds stacked" if self.seeds > 1 else ""
        if self.mode == "loader":
            return f"image-folder loader, {self.workers} workers"
        return f"{self.model} {self.strategy} {self.batch} {self.mode}{extra}"

    def matches(self, words: list[str]) -> bool:
        return any(w in (self.group, self.model, self.strategy, self.mode) for w in words)


def plan(sz: Sizes) -> list[tuple[str, str, list[Row]]]:
    """(group, kind, rows) in order of importance; kind says how the group is measured."""
    small, large = sz.cifar_batches
    est = sz.est
    share = est["loader"] / len(sz.loader_workers)

    def cifar(model, strategy, batch, mode="eager", group="cifar", scale=1.0, **kw):
        return Row(group, model, strategy, batch, mode, est_s=est[mode] * scale, **kw)  # scale: of the estimate

    groups = [
        (
            "resnet32-128",
            "steps",
            [
                cifar("resnet32", s, small, m, group="resnet32-128")
                for m in ("eager", "graph")
                for s in ("ait", "baseline")
            ],
        ),
        ("compile", "child", [cifar("resnet32", "ait", small, "compile", group="compile")]),
        (
            "cifar",
            "steps",
            [cifar("resnet32", s, large, m) for m in ("eager", "graph") for s in ("ait", "baseline")]
            + [
                cifar("resnet20", s, b, m)
                for b in (small, large)
                for m in ("eager", "graph")
                for s in ("ait", "baseline")
            ],
        ),
        (
            "procs",
            "procs",
            [Row("procs", "resnet20", "ait", small, "eager", processes=k, est_s=est["procs"]) for k in sz.proc_counts],
        ),
        (
            "resnet50",
            "steps",
            [
                Row("resnet50", "resnet50", s, sz.rn50_batch, "eager", sz.rn50_size, est_s=est["resnet50"])
                for s in ("ait", "baseline")
            ],
        ),
        ("wrn16_4", "steps", [cifar("wrn16_4", "ait", small, group="wrn16_4")]),
        (
            "loader",
            "loader",
            [
                # the group's cost (making the JPEGs, then each worker count) shared among its rows
                Row("loader", "imagefolder", "loader", sz.loader_batch, "loader", 224, workers=w, est_s=share)
                for w in sz.loader_workers
            ],
        ),
    ]
    groups.append(
        (
            "stacked",
            "steps",
            [
                cifar("resnet20", "ait", small, m, group="stacked", seeds=k, scale=max(1, k / 4))
                for k in sz.stacked_seeds
                for m in ("eager", "graph")
            ],
        )
    )
    mps = [
        Row("procs-mps", "resnet20", "ait", small, "eager", processes=k, mps=True, est_s=est["procs"])
        for k in sz.proc_counts
    ]
    if not sz.smoke:  # after the rest: MPS may not start on every machine (a smoke check must not depend on it)
        groups.append(("procs-mps", "procs", mps))
    if not sz.smoke:  # CUDA graphs through torch.compile: a comparison for the graph-captured step
        groups.append(("compile-ro", "child", [cifar("resnet32", "ait", small, "compile-ro", group="compile-ro")]))
    return groups


class Budget:
    """Seconds left before the deadline; a row starts only if its estimate fits."""

    def __init__(self, seconds: float):
        self.start = time.perf_counter()
        self.deadline = self.start + seconds

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def left(self) -> float:
        return self.deadline - time.perf_counter()

    def fits(self, seconds: float) -> bool:
        return self.left() - RESERVE_S >= seconds

    def short_of(self, seconds: float) -> str:
        return f"budget: {max(self.left() - RESERVE_S, 0):.0f} s left, about {seconds:.0f} s needed"


def skip(row: Row, reason: str) -> None:
    row.status, row.note = "skipped", reason


def fail(row: Row, err: BaseException) -> None:
    """Record the error on the row (its first line), print the traceback for the log, free memory."""
    row.status = "error"
    row.error = f"{type(err).__name__}: {(str(err).splitlines() or [''])[0][:400]}"
    print(f"  {row.label}: {row.error}", file=sys.stderr)
    traceback.print_exc(limit=3, file=sys.stderr)
    free_memory()


def free_memory() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


# --- the training step of a row ---------------------------------------------------------------------


class Context:
    """What the rows of a run share: the device, sizes, options, data and the FLOP counts."""

    def __init__(self, args, sz: Sizes):
        self.args, self.sz, self.device = args, sz, args.device
        self.cuda = args.device.startswith("cuda")
        self._data: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}
        self.flops: dict[tuple, float | None] = {}

    def data(self, row: Row) -> tuple[np.ndarray, np.ndarray]:
        """uint8 (N, H, W, 3) images and labels: CIFAR-100 (or random) at 32x32, random otherwise."""
        key = (row.image_size,)
        if key not in self._data:
            if row.image_size == 32:
                self._data[key] = load_images(self.sz.cifar_samples)
            else:
                rng = np.random.default_rng(0)
                n, s = self.sz.rn50_samples, row.image_size
                self._data[key] = (rng.integers(0, 256, (n, s, s, 3), dtype=np.uint8), rng.integers(0, 1000, n))
        return self._data[key]

    def compile_wrapper(self, mode: str) -> Callable | None:
        if mode in ("eager", "graph"):
            return None
        kwargs = {"backend": self.args.compile_backend}
        if mode == "compile-ro":
            kwargs["mode"] = "reduce-overhead"
        return lambda fn: torch.compile(fn, **kwargs)


def build_step(ctx: Context, row: Row) -> Callable[[], int]:
    """ait's training step for the row (bench_train.ait_step_fn), returning images per call."""
    images, labels = ctx.data(row)
    views = 2 if row.strategy == "ait" else 1
    recipe = "rp" if row.image_size == 32 else "rrc"
    return ait_step_fn(
        row.model,
        images,
        labels,
        ctx.device,
        views,
        "auto",
        recipes=[recipe] * views,
        images_per_step=row.batch,
        num_classes=100 if row.image_size == 32 else 1000,
        forward_wrapper=ctx.compile_wrapper(row.mode),
        cuda_graphs=row.mode == "graph",
        seeds=row.seeds,
    )


def timed(fn: Callable[[], int], steps: int, device: str) -> tuple[float, int]:
    """(seconds, images) of ``steps`` calls, CUDA synchronised before and after."""
    sync(device)
    start = time.perf_counter()
    images = sum(fn() for _ in range(steps))
    sync(device)
    return time.perf_counter() - start, images


def count_flops(fn: Callable[[], int]) -> float | None:
    """FLOPs of one call (matmuls and convolutions, forward and backward), or None where the
    FlopCounterMode of this torch cannot count it."""
    try:
        from torch.utils.flop_counter import FlopCounterMode
    except ImportError:  # torch before 2.1
        return None
    try:
        with FlopCounterMode(display=False) as counter:
            fn()
        return float(counter.get_total_flops()) or None
    except Exception as err:  # a counter that trips over an op: the row is still measured
        print(f"  FLOP count failed: {type(err).__name__}: {err}", file=sys.stderr)
        return None


def prepare(ctx: Context, row: Row) -> tuple[Callable[[], int], int]:
    """Build and warm up the row's step; set its peak memory, compile time and FLOPs; return the
    step and the steps per timed repeat (about --repeat-s seconds)."""
    sz = ctx.sz
    if ctx.cuda:
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
    fn = build_step(ctx, row)
    warmup = max(sz.warmup, 3) if row.mode.startswith("compile") else sz.warmup
    first, _ = timed(fn, 1, ctx.device)
    rest = [timed(fn, 1, ctx.device)[0] for _ in range(warmup - 1)]
    if row.mode.startswith("compile"):  # the first call compiles (and records graphs, for reduce-overhead)
        row.compile_s = first - (statistics.median(rest) if rest else 0.0)
    if ctx.cuda:
        row.peak_mem_mb = (torch.cuda.max_memory_allocated() - base) / 2**20
    key = (row.model, row.strategy, row.batch, row.image_size)  # one network's step
    if ctx.flops.get(key) is None and row.mode == "eager":
        # Stacked seeds: K times one network's count. FlopCounterMode counts a grouped convolution's
        # weight gradient as if it were dense (K times too much), and the stack does no other work.
        ctx.flops[key] = count_flops(fn if row.seeds == 1 else build_step(ctx, dataclasses.replace(row, seeds=1)))
    row.flops_per_step = None if ctx.flops.get(key) is None else ctx.flops[key] * row.seeds
    if sz.repeat_s <= 0:
        return fn, sz.min_steps
    probe, _ = timed(fn, 3, ctx.device)
    steps = int(round(sz.repeat_s / max(probe / 3, 1e-6)))
    return fn, min(max(steps, sz.min_steps), sz.max_steps)


@dataclass
class Live:
    """A row being timed: its step, steps per repeat, and the repeats' rates so far."""

    row: Row
    fn: Callable[[], int]
    steps: int
    rates: list[float] = field(default_factory=list)
    step_ms: list[float] = field(default_factory=list)

    def repeat_s(self) -> float:
        return self.steps * self.step_ms[-1] / 1000 if self.step_ms else 0.0

    def finish(self) -> None:
        row = self.row
        if not self.rates:
            row.status, row.error = "error", "no repeat was timed"
            return
        row.status, row.steps, row.repeats = "ok", self.steps, len(self.rates)
        row.images_per_s = statistics.median(self.rates)
        per_step = row.batch * row.seeds  # images through the network(s) per step
        row.ms_per_step = 1000 * per_step / row.images_per_s  # the median rate's step (an even count averages two)


def run_steps_group(ctx: Context, rows: list[Row], budget: Budget) -> None:
    """Measure the rows' steps interleaved: each repeat runs every live row once, in turn, so a
    drift of the machine's speed hits all of them alike."""
    live: list[Live] = []
    planned = 0.0  # rows are prepared first and timed together: each must fit with those before it
    for row in rows:
        if row.mode == "graph" and not ctx.cuda:
            skip(row, "CUDA graphs: CUDA only")
            continue
        if not budget.fits(planned + row.est_s):
            skip(row, budget.short_of(planned + row.est_s))
            continue
        planned += row.est_s
        try:
            live.append(Live(row, *prepare(ctx, row)))
        except Exception as err:
            fail(row, err)
    for r in range(ctx.sz.repeats):
        if r > 0 and not budget.fits(sum(entry.repeat_s() for entry in live)):
            for entry in live:
                entry.row.note = f"{r} of {ctx.sz.repeats} repeats (budget)"
            break
        for entry in list(live):
            try:
                seconds, images = timed(entry.fn, entry.steps, ctx.device)
            except Exception as err:
                fail(entry.row, err)
                live.remove(entry)
                continue
            entry.rates.append(images / seconds)
            entry.step_ms.append(1000 * seconds / entry.steps)
    for entry in live:
        entry.finish()
    del live
    free_memory()


# --- rows in child processes: compile (under a timeout) and several processes on one GPU -------------


def child_command(args, *extra: str) -> list[str]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--device", args.device]
    cmd += ["--compile-backend", args.compile_backend]
    cmd += ["--smoke"] if args.smoke else []
    cmd += ["--cudnn-benchmark"] if args.cudnn_benchmark else []
    cmd += ["--repeats", str(args.repeats)] if args.repeats is not None else []
    cmd += ["--repeat-s", str(args.repeat_s)] if args.repeat_s is not None else []
    return cmd + list(extra)


def row_json(row: Row) -> str:
    return json.dumps(dataclasses.asdict(row))


def run_child_row(ctx: Context, row: Row, budget: Budget) -> None:
    """The row measured alone in a fresh process (a cold compile, a hang or a crash stays there)."""
    if not ctx.cuda and row.mode == "compile-ro":
        return skip(row, "CUDA graphs: CUDA only")
    if not budget.fits(row.est_s):
        return skip(row, budget.short_of(row.est_s))
    # A cold compile may take minutes; twice the estimate at most, so that a hang leaves time for the rest.
    limit = min(budget.left() - RESERVE_S, 2 * row.est_s)
    try:
        done = subprocess.run(
            child_command(ctx.args, "--child-row", row_json(row)), capture_output=True, text=True, timeout=limit
        )
    except subprocess.TimeoutExpired:
        row.status, row.error = "error", f"timed out after {limit:.0f} s"
        return None
    sys.stderr.write(done.stderr[-4000:])
    result = [line[4:] for line in done.stdout.splitlines() if line.startswith("ROW ")]
    if done.returncode != 0 or not result:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        row.status, row.error = "error", f"child exited {done.returncode}: {tail[:400]}"
        return None
    for key, value in json.loads(result[-1]).items():
        setattr(row, key, value)
    flops = ctx.flops.get((row.model, row.strategy, row.batch, row.image_size))
    row.flops_per_step = row.flops_per_step or flops  # compiled steps take the eager row's count
    row.note = "; ".join(filter(None, ["measured alone, in a child process", row.note]))
    return None


def child_row_main(args) -> None:
    """--child-row: measure one row and print it as ``ROW {json}``."""
    sz = sizes_for(args)
    row = Row(**json.loads(args.child_row))
    ctx = Context(args, sz)
    run_steps_group(ctx, [row], Budget(3600))
    print("ROW " + row_json(row), flush=True)


def run_procs_row(ctx: Context, row: Row, budget: Budget) -> None:
    """``row.processes`` copies of the row's step in child processes, started together through a
    file barrier once all are warm, each timing the same wall-clock window; images/s summed."""
    est = row.est_s + 2 * row.processes
    if not budget.fits(est):
        return skip(row, budget.short_of(est))
    if row.mps:
        return run_under_mps(ctx, row, budget)
    return run_procs(ctx, row, budget)


def run_under_mps(ctx: Context, row: Row, budget: Budget) -> None:
    """The row's processes with NVIDIA's MPS daemon running (their kernels share the GPU at once
    instead of time-slicing it); the daemon is stopped after the row, however it ended."""
    if not ctx.cuda:
        return skip(row, "MPS: CUDA only")
    try:
        started = subprocess.run(["nvidia-cuda-mps-control", "-d"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as err:
        return skip(row, f"MPS did not start: {err}"[:300])
    if started.returncode != 0:
        return skip(row, f"MPS did not start: {(started.stderr or started.stdout).strip()[:300]}")
    try:
        time.sleep(1.0)  # the control daemon starts its server on the first client
        return run_procs(ctx, row, budget)
    finally:
        subprocess.run(["nvidia-cuda-mps-control"], input="quit\n", text=True, capture_output=True, timeout=30)


def run_procs(ctx: Context, row: Row, budget: Budget) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        barrier = Path(tmp)
        procs = [start_proc(ctx, row, barrier, k) for k in range(row.processes)]
        try:
            results = gather_procs(ctx, procs, barrier, budget)
        except Exception as err:
            for p, log in procs:
                p.kill()
                p.wait()
                log.close()
            row.status, row.error = "error", f"{type(err).__name__}: {err}"[:400]
            return None
    images = sum(r["images"] / r["seconds"] for r in results)
    step_ms = [1000 * r["seconds"] / r["steps"] for r in results]
    row.status, row.images_per_s = "ok", images
    row.ms_per_step, row.steps, row.repeats = statistics.median(step_ms), min(r["steps"] for r in results), 1
    row.peak_mem_mb = max((r["peak_mem_mb"] or 0.0) for r in results) or None
    row.flops_per_step = ctx.flops.get((row.model, row.strategy, row.batch, row.image_size))
    row.note = (
        f"aggregate of {row.processes} processes over one {ctx.sz.proc_duration_s:.0f} s window; ms/step per process"
    )
    return None


def start_proc(ctx: Context, row: Row, barrier: Path, k: int):
    log = open(barrier / f"child{k}.log", "w")  # a file, not a pipe: a chatty child cannot block
    threads = max(1, (os.cpu_count() or 1) // row.processes)
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    cmd = child_command(ctx.args, "--proc-child", row_json(row), "--barrier", str(barrier), "--index", str(k))
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, text=True, env=env), log


def gather_procs(ctx: Context, procs, barrier: Path, budget: Budget) -> list[dict]:
    """Wait until every child is warm, open the barrier, collect each child's result file."""
    n = len(procs)
    limit = time.perf_counter() + min(120.0, max(budget.left() - RESERVE_S - ctx.sz.proc_duration_s, 5.0))
    while len(list(barrier.glob("ready*"))) < n:
        dead = [k for k, (p, _) in enumerate(procs) if p.poll() is not None]
        if dead or time.perf_counter() > limit:
            raise RuntimeError(proc_failure(barrier, dead, "died before the start" if dead else "not ready in time"))
        time.sleep(0.02)
    (barrier / "go").touch()
    results = []
    for k, (p, log) in enumerate(procs):
        p.wait(timeout=ctx.sz.proc_duration_s + 120)
        log.close()
        out = barrier / f"result{k}.json"
        if p.returncode != 0 or not out.exists():
            raise RuntimeError(proc_failure(barrier, [k], f"exited {p.returncode}"))
        results.append(json.loads(out.read_text()))
    return results


def proc_failure(barrier: Path, which: list[int], what: str) -> str:
    k = which[0] if which else 0
    log = barrier / f"child{k}.log"
    tail = log.read_text().strip().splitlines()[-1:] if log.exists() else []
    return f"process {k} {what}: {tail[0][:300] if tail else 'no output'}"


def proc_child_main(args) -> None:
    """--proc-child: warm up, signal ready, wait for the barrier, run steps for the window."""
    sz = sizes_for(args)
    row = Row(**json.loads(args.proc_child))
    ctx = Context(args, sz)
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    if ctx.cuda:
        torch.cuda.reset_peak_memory_stats()
    fn = build_step(ctx, row)
    for _ in range(sz.warmup):
        fn()
    sync(args.device)
    barrier = Path(args.barrier)
    (barrier / f"ready{args.index}").touch()
    deadline = time.perf_counter() + 300
    while not (barrier / "go").exists():
        if time.perf_counter() > deadline:
            raise SystemExit("the barrier never opened")
        time.sleep(0.002)
    images = steps = 0
    start = time.perf_counter()
    while time.perf_counter() - start < sz.proc_duration_s or steps < 2:
        images += fn()
        steps += 1
    sync(args.device)
    seconds = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated() / 2**20 if ctx.cuda else None
    result = {"images": images, "steps": steps, "seconds": seconds, "peak_mem_mb": peak}
    (barrier / f"result{args.index}.json").write_text(json.dumps(result))


# --- the image-folder loader --------------------------------------------------------------------------


def run_loader_group(ctx: Context, rows: list[Row], budget: Budget) -> None:
    """bench_imagefolder's generated JPEGs through ait's loader (two RandomResizedCrop views per
    sample, as AIT trains on image folders), interleaved over the worker counts."""
    sz = ctx.sz
    if not budget.fits(sum(r.est_s for r in rows)):
        for row in rows:
            skip(row, budget.short_of(sum(r.est_s for r in rows)))
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the main process only collates: leave the cores to the workers
    try:
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            index = scan_image_folder(make_folder(Path(tmp) / "train", sz.loader_images, 10, *sz.loader_wh))
            made_s = time.perf_counter() - start
            rates: dict[int, list[float]] = {id(r): [] for r in rows}
            for _ in range(sz.loader_repeats):
                for row in rows:
                    if row.status == "error":
                        continue
                    try:
                        rate = time_loader(index, True, row.workers, sz.loader_batch, sz.loader_epochs)
                        rates[id(row)].append(rate)
                    except Exception as err:
                        fail(row, err)
    finally:
        torch.set_num_threads(threads)
    for row in rows:
        if rates[id(row)]:
            row.status, row.samples_per_s = "ok", statistics.median(rates[id(row)])
            row.ms_per_step, row.repeats = 1000 * row.batch / row.samples_per_s, len(rates[id(row)])
            w, h = sz.loader_wh
            row.note = f"{sz.loader_images} JPEGs {w}x{h} (made in {made_s:.0f} s), 2 views of 224 per sample"


# --- the device's bf16 matmul rate --------------------------------------------------------------------


def matmul_rate(device: str, n: int) -> dict:
    """bf16 FLOP/s of an n x n matmul on the device (median of 5 timed repeats)."""
    dev = torch.device(device)
    try:
        a = torch.randn(n, n, device=dev).to(torch.bfloat16)
        b = torch.randn(n, n, device=dev).to(torch.bfloat16)
        inner = 50 if dev.type == "cuda" else 5

        def matmul() -> int:
            torch.mm(a, b)
            return 0

        timed(matmul, 3, device)  # warm-up: clocks, cuBLAS's handle and workspace
        times = [timed(matmul, inner, device)[0] for _ in range(5)]
        return {"n": n, "dtype": "bfloat16", "flop_per_s": 2 * n**3 * inner / statistics.median(times)}
    except Exception as err:
        return {"n": n, "dtype": "bfloat16", "flop_per_s": None, "error": f"{type(err).__name__}: {err}"[:400]}


# --- results ---------------------------------------------------------------------------------------------


def add_rates(rows: list[Row], matmul: dict) -> None:
    """Achieved FLOP/s of each measured row, and its fraction of the matmul rate."""
    for row in rows:
        if row.status != "ok" or not row.flops_per_step or not row.images_per_s:
            continue
        steps_per_s = row.images_per_s / (row.batch * row.seeds)  # of all processes together
        achieved = row.flops_per_step * steps_per_s
        row.achieved_tflop_s = achieved / 1e12
        if matmul.get("flop_per_s"):
            row.matmul_fraction = achieved / matmul["flop_per_s"]


def fmt(value, spec: str) -> str:
    return "" if value is None else format(value, spec)


def table(rows: list[Row]) -> str:
    lines = [
        "| model | strategy | batch | mode | procs | images/s | ms/step | peak MiB | TFLOP/s | of bf16 matmul "
        "| status |",
        "|---|---|---:|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        rate = fmt(r.images_per_s, ".0f")
        if r.mode == "loader" and r.samples_per_s is not None:
            rate = f"{r.samples_per_s:.0f} samples/s"
        status = r.status if r.status == "ok" else f"{r.status}: {r.error or r.note}".replace("|", "/")
        if r.status == "ok" and r.compile_s is not None:
            status += f" (compile {r.compile_s:.0f} s)"
        model = f"{r.model} {r.image_size}px" if r.image_size != 32 and r.mode != "loader" else r.model
        model += f", {r.seeds} seeds stacked" if r.seeds > 1 else ""
        mode = f"{r.workers} workers" if r.mode == "loader" else r.mode
        procs = f"{r.processes} MPS" if r.mps else str(r.processes)
        lines.append(
            f"| {model} | {r.strategy} | {r.batch} | {mode} | {procs} | {rate} | {fmt(r.ms_per_step, '.2f')} "
            f"| {fmt(r.peak_mem_mb, '.0f')} | {fmt(r.achieved_tflop_s, '.3g')} | {fmt(r.matmul_fraction, '.1%')} "
            f"| {status} |"
        )
    return "\n".join(lines)


def machine(args) -> dict:
    """What the numbers were measured on and with."""
    info = {
        "command": " ".join([Path(sys.executable).name] + sys.argv),
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "device": args.device,
        "smoke": args.smoke,
        "budget_s": args.budget_s,
        "cudnn_benchmark": args.cudnn_benchmark,
        "compile_backend": args.compile_backend,
    }
    if args.device.startswith("cuda"):
        props = torch.cuda.get_device_properties(torch.device(args.device))
        info.update(
            gpu=props.name,
            capability=f"{props.major}.{props.minor}",
            gpu_memory_gib=round(props.total_memory / 2**30, 1),
            cuda=torch.version.cuda,
            cudnn=torch.backends.cudnn.version(),
        )
    try:
        info["commit"] = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return info


def peak_rss_mb() -> float | None:
    """This process's peak resident memory (Linux), None elsewhere."""
    try:
        value = high_water_mib()
    except OSError:
        return None
    return None if value != value else round(value, 1)  # NaN: no VmHWM line


def write(out: Path, meta: dict, matmul: dict, rows: list[Row], budget: Budget) -> str:
    add_rates(rows, matmul)
    meta = {**meta, "elapsed_s": round(budget.elapsed(), 1), "peak_rss_mb": peak_rss_mb()}
    out.mkdir(parents=True, exist_ok=True)
    doc = {"meta": meta, "matmul": matmul, "rows": [dataclasses.asdict(r) for r in rows]}
    (out / RESULTS_JSON).write_text(json.dumps(doc, indent=2))
    rate = matmul.get("flop_per_s")
    head = (
        f"{meta.get('gpu', meta['device'])}, torch {meta['torch']}, bf16 matmul {matmul['n']}^3: "
        + (f"{rate / 1e12:.1f} TFLOP/s" if rate else f"failed ({matmul.get('error')})")
        + f"; {meta['elapsed_s']:.0f} s of a {meta['budget_s']:.0f} s budget"
    )
    text = f"{head}\n\n{table(rows)}\n\ncommand: `{meta['command']}`\n"
    (out / RESULTS_MD).write_text(text)
    return text


# --- main --------------------------------------------------------------------------------------------------


def run_group(ctx: Context, kind: str, rows: list[Row], budget: Budget) -> None:
    if kind == "steps":
        run_steps_group(ctx, rows, budget)
    elif kind == "child":
        for row in rows:
            run_child_row(ctx, row, budget)
    elif kind == "procs":
        for row in rows:
            run_procs_row(ctx, row, budget)
    elif kind == "loader":
        run_loader_group(ctx, rows, budget)


def parse_args(argv=None):
    default_device = "cuda" if torch.cuda.is_available() else "cpu"
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default=default_device, help=f"default here: {default_device}")
    p.add_argument("--out", default=os.environ.get("OUT") or "runs/gpu-bench", help="folder for the JSON and table")
    p.add_argument("--budget-s", type=float, default=330.0, help="rows that no longer fit are skipped")
    p.add_argument("--smoke", action="store_true", help="tiny sizes: tries every row in about a minute")
    p.add_argument(
        "--only", nargs="+", default=[], help="keep rows whose group, model, strategy or mode is one of these"
    )
    p.add_argument(
        "--skip", nargs="+", default=[], help="leave out rows whose group, model, strategy or mode is one of these"
    )
    p.add_argument("--repeats", type=int, help="timed repeats per row, interleaved (default 5; --smoke: 2)")
    p.add_argument(
        "--repeat-s",
        type=float,
        help="seconds per timed repeat, which sets its steps (default 0.5; 0: the fewest, 5 or --smoke's 2)",
    )
    p.add_argument("--compile-backend", help="torch.compile's backend (default inductor; --smoke: aot_eager)")
    p.add_argument("--cudnn-benchmark", action="store_true", help="torch.backends.cudnn.benchmark (ait leaves it off)")
    p.add_argument("--strict", action="store_true", help="exit with status 1 when a row failed (the GPU check)")
    p.add_argument("--child-row", help=argparse.SUPPRESS)
    p.add_argument("--proc-child", help=argparse.SUPPRESS)
    p.add_argument("--barrier", help=argparse.SUPPRESS)
    p.add_argument("--index", type=int, default=0, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.compile_backend = args.compile_backend or ("aot_eager" if args.smoke else "inductor")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.backends.cudnn.benchmark = args.cudnn_benchmark
    if args.child_row:
        child_row_main(args)
        return 0
    if args.proc_child:
        proc_child_main(args)
        return 0
    budget = Budget(args.budget_s)
    sz = sizes_for(args)
    ctx = Context(args, sz)
    groups = plan(sz)
    rows = [r for _, _, rs in groups for r in rs]
    for row in rows:
        if (args.only and not row.matches(args.only)) or row.matches(args.skip):
            skip(row, "not selected (--only / --skip)")
    meta = machine(args)
    out = Path(args.out)
    matmul = matmul_rate(args.device, sz.matmul_n)
    print(f"[{budget.elapsed():5.1f} s] bf16 matmul: {matmul}", file=sys.stderr, flush=True)
    for _, kind, group_rows in groups:
        todo = [r for r in group_rows if r.status == "pending"]
        if todo:
            run_group(ctx, kind, todo, budget)
            for r in todo:
                rate = r.images_per_s if r.images_per_s is not None else r.samples_per_s
                print(
                    f"[{budget.elapsed():5.1f} s] {r.label}: {r.status} {fmt(rate, '.0f')}", file=sys.stderr, flush=True
                )
        write(out, meta, matmul, rows, budget)
    print(write(out, meta, matmul, rows, budget))
    print(f"results in {out / RESULTS_JSON} and {out / RESULTS_MD}")
    failed = [r.label for r in rows if r.status == "error"]
    if failed:
        print(f"{len(failed)} row(s) failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if args.strict and failed else 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())

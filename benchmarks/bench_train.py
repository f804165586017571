"""Training throughput of ait against a re-creation of the original implementation's pipeline.

    .venv/bin/python benchmarks/bench_train.py                 # the full set (about 10 minutes on 2 cores)
    .venv/bin/python benchmarks/bench_train.py --quick         # ResNet-32 only, fewer steps
    .venv/bin/python benchmarks/bench_train.py --device cuda   # on a GPU (bigger batches make sense there)

Measured in one process, interleaved (A B C A B C ...) and reported as medians, because these
machines are shared and noisy: only the ratios within one run mean anything. For each model:

1. compute      the model's forward/backward/SGD step on pre-made normalised tensors, fp32 NCHW:
                the ceiling of a naive implementation;
2. original     the authors' input pipeline re-created: per-sample PIL pad-crop + flip + to-tensor +
                normalise in 2 DataLoader workers, two views per sample, feeding the same fp32 model
                with CE + AiLoss;
3. ait          ait's AIT step end to end (sampling, views on the device, forward, AiLoss, backward,
                SGD) with its default settings (bf16 autocast + channels_last where supported), and
                "ait fp32" with fp32 NCHW;
4. baseline     ait's baseline step at the same 128 images per step (defaults).

Images/s count images through the network (128 per step everywhere). ``--rss-only`` measures the
peak resident memory of each configuration in a fresh process (VmHWM of the process plus its
DataLoader workers), separately so that it does not disturb the timings.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from ait import models  # noqa: E402
from ait.config import ConsistencyConfig, OptimConfig  # noqa: E402
from ait.data import EpochSampler  # noqa: E402
from ait.engine.graphs import GraphedStep  # noqa: E402
from ait.engine.optim import build_optimizer  # noqa: E402
from ait.engine.trainer import BranchTrainer, StepStats  # noqa: E402
from ait.losses import AiLoss  # noqa: E402
from ait.models.stacked import StackedNetworks  # noqa: E402
from ait.runtime.precision import resolve_precision  # noqa: E402
from ait.runtime.predict import predict_logits  # noqa: E402
from ait.views import parse_recipe  # noqa: E402

MEAN, STD = (0.507, 0.487, 0.441), (0.267, 0.256, 0.276)  # CIFAR-100
IMAGES_PER_STEP = 128
CONFIGS = ("compute", "original", "ait", "ait fp32", "baseline")


def load_images(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Real CIFAR-100 images (N, 32, 32, 3) uint8 from ../shared/data when present, else random."""
    path = ROOT.parent / "shared" / "data" / "cifar100" / "train-20000.npz"
    if path.exists():
        with np.load(path) as f:
            return f["images"][:n].copy(), f["labels"][:n].astype(np.int64)
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8), rng.integers(0, 100, n)


# --- 2. the original pipeline, re-created without torchvision -----------------------------------


class OriginalPairs(torch.utils.data.Dataset):
    """Per-sample PIL transforms as torchvision's RandomCrop(32, padding=4), RandomHorizontalFlip,
    ToTensor, Normalize; returns two independently augmented views of each sample."""

    def __init__(self, images: np.ndarray, labels: np.ndarray):
        self.images, self.labels = images, labels
        self.mean = np.array(MEAN, dtype=np.float32).reshape(3, 1, 1)
        self.std = np.array(STD, dtype=np.float32).reshape(3, 1, 1)

    def __len__(self) -> int:
        return len(self.images)

    def view(self, img):
        from PIL import Image, ImageOps

        padded = ImageOps.expand(img, border=4, fill=0)
        x, y = np.random.randint(0, 9, size=2)
        out = padded.crop((x, y, x + 32, y + 32))
        if np.random.rand() < 0.5:
            out = out.transpose(Image.FLIP_LEFT_RIGHT)
        arr = np.asarray(out, dtype=np.float32).transpose(2, 0, 1) / 255.0
        return torch.from_numpy((arr - self.mean) / self.std)

    def __getitem__(self, i):
        from PIL import Image

        img = Image.fromarray(self.images[i])
        return self.view(img), self.view(img), int(self.labels[i])


def seed_worker(worker_id: int) -> None:
    np.random.seed(torch.initial_seed() % 2**32)


def original_step_fn(model_name: str, images, labels, device) -> Callable[[], int]:
    model = models.create(model_name, 100).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    loader = torch.utils.data.DataLoader(
        OriginalPairs(images, labels),
        batch_size=IMAGES_PER_STEP // 2,
        shuffle=True,
        num_workers=2,
        drop_last=True,
        persistent_workers=True,
        worker_init_fn=seed_worker,
        prefetch_factor=4,
    )
    ailoss = AiLoss()
    it = iter(loader)

    def step() -> int:
        nonlocal it
        try:
            v1, v2, y = next(it)
        except StopIteration:
            it = iter(loader)
            v1, v2, y = next(it)
        x = torch.cat([v1, v2]).to(device)
        y = y.to(device)
        out = model(x)
        a, b = out.chunk(2)
        loss = F.cross_entropy(out, torch.cat([y, y])) + ailoss(a, b)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return x.shape[0]

    return step


# --- 1. compute only ------------------------------------------------------------------------------


def compute_step_fn(model_name: str, device) -> Callable[[], int]:
    model = models.create(model_name, 100).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(IMAGES_PER_STEP, 3, 32, 32, generator=g).to(device)
    y = torch.randint(0, 100, (IMAGES_PER_STEP,), generator=g).to(device)

    def step() -> int:
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return IMAGES_PER_STEP

    return step


# --- 3./4. ait's own step --------------------------------------------------------------------------


def ait_step_fn(
    model_name: str,
    images,
    labels,
    device,
    views: int,
    precision: str,
    guard: bool = True,
    recipes=None,
    images_per_step: int = IMAGES_PER_STEP,
    num_classes: int = 100,
    forward_wrapper: Callable | None = None,
    cuda_graphs: bool = False,
    seeds: int = 1,
) -> Callable[[], int]:
    """views = 1: the baseline; views >= 2: AIT with that many "rp" views (or ``recipes``, one name
    per view), images_per_step / views samples. The optimiser is the one runs use (fused SGD);
    guard=False leaves out the non-finite guard. forward_wrapper: applied to the network's
    ``forward_all`` as ``train.compile`` applies torch.compile (benchmarks/gpu.py). cuda_graphs:
    the step captured in a CUDA graph and replayed, as ``train.cuda_graphs`` runs it. seeds > 1:
    that many networks stacked into one (ait.models.stacked), each taking images_per_step."""
    dev = torch.device(device)
    prec = resolve_precision(dev, precision, None if precision == "auto" else False)
    model = models.create(model_name, num_classes)
    if seeds > 1:
        model = StackedNetworks([model] + [models.create(model_name, num_classes) for _ in range(seeds - 1)])
    model = model.to(dev)
    if prec.channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt = build_optimizer(model, model_name, OptimConfig(lr=0.01, momentum=0.9, weight_decay=1e-4))
    branches = [(0, v) for v in range(views)]
    trainer = BranchTrainer(
        [model],
        [parse_recipe(r) for r in (recipes or ["rp"] * views)],
        branches,
        ConsistencyConfig(weight=1.0 if views > 1 else 0.0),
        prec,
        MEAN,
        STD,
        guard=guard,
        forwards=[forward_wrapper(model.forward_all)] if forward_wrapper is not None else None,
    )
    data = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous().to(dev)
    targets = torch.from_numpy(labels).to(dev)
    sampler = EpochSampler(len(data), seeds * images_per_step // views, seed=0)
    gen = torch.Generator(device=dev)
    take_step = GraphedStep(trainer) if cuda_graphs else trainer.step
    state = {"epoch": 0, "batches": iter(sampler.batches(0)), "step": 0}

    def next_indices() -> torch.Tensor:
        try:
            return next(state["batches"])
        except StopIteration:
            state["epoch"] += 1
            state["batches"] = iter(sampler.batches(state["epoch"]))
            return next(state["batches"])

    def step() -> int:
        idx = next_indices().to(dev)
        gen.manual_seed(state["step"])
        state["step"] += 1
        take_step(data[idx], targets[idx], [opt], generator=gen)
        return len(idx) * views

    def pipeline_only() -> int:  # sampling + views, no network: the input pipeline's share
        idx = next_indices().to(dev)
        gen.manual_seed(state["step"])
        state["step"] += 1
        trainer.make_views(data[idx], gen)
        return len(idx) * views

    step.pipeline_only = pipeline_only  # type: ignore[attr-defined]
    step.trainer = trainer  # type: ignore[attr-defined]
    return step


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def measure(fns: dict[str, Callable[[], int]], steps: int, repeats: int, warmup: int, device: str) -> dict[str, float]:
    """Median images/s of each function, measured round-robin so that load drifts hit all alike."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    sync(device)
    rates: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            images = sum(fn() for _ in range(steps))
            sync(device)
            rates[name].append(images / (time.perf_counter() - start))
    return {k: statistics.median(v) for k, v in rates.items()}


def high_water_mib(pid: int | str = "self") -> float:
    """VmHWM of a process: its peak resident memory since its last exec (MiB). Unlike ru_maxrss it
    does not inherit the parent's peak across fork + exec."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def child_pids() -> list[int]:
    me, out = os.getpid(), []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == me:  # field 4 of /proc/PID/stat is the parent pid
            out.append(int(stat.parent.name))
    return out


def peak_rss_mib(config: str, model: str, device: str) -> float:
    """Peak resident memory of one configuration in a fresh process (MiB, self + DataLoader workers)."""
    out = subprocess.run(
        [sys.executable, __file__, "--rss-child", config, "--models", model, "--device", device],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if out.returncode != 0:
        return float("nan")
    return float(out.stdout.strip().splitlines()[-1])


def rss_child(config: str, model: str, device: str) -> None:
    images, labels = load_images(4096)
    fn = {
        "compute": lambda: compute_step_fn(model, device),
        "original": lambda: original_step_fn(model, images, labels, device),
        "ait": lambda: ait_step_fn(model, images, labels, device, 2, "auto"),
        "ait fp32": lambda: ait_step_fn(model, images, labels, device, 2, "fp32"),
        "baseline": lambda: ait_step_fn(model, images, labels, device, 1, "auto"),
    }[config]()
    for _ in range(5):
        fn()
    print(high_water_mib() + sum(high_water_mib(pid) for pid in child_pids()))


def guard_table(args, images, labels) -> None:
    """The step with the non-finite guard on and off. Each round times on, off, off, on (ABBA, so
    a drift of the shared machine's load cancels) and gives one ratio; the table reports the
    median ratio of the rounds and their spread."""
    for model in args.models:
        print(f"## {model}: the non-finite guard ({args.repeats} ABBA rounds of {args.steps} steps each)")
        print(
            "| step | images/s, guard | images/s, no guard | step time, guard / no guard (min-max) "
            "| the guard's work alone, share of a step |"
        )
        print("|---|---:|---:|---|---:|")
        for kind, views in (("ait", 2), ("baseline", 1)):
            on = ait_step_fn(model, images, labels, args.device, views, "auto")
            off = ait_step_fn(model, images, labels, args.device, views, "auto", guard=False)
            ratios, rates = [], {"on": [], "off": []}
            for _ in range(2):  # warm-up
                on(), off()
            for _ in range(args.repeats):
                times = {"on": 0.0, "off": 0.0}
                for name in ("on", "off", "off", "on"):
                    fn = on if name == "on" else off
                    start = time.perf_counter()
                    images_done = sum(fn() for _ in range(args.steps))
                    sync(args.device)
                    times[name] += time.perf_counter() - start
                ratios.append(times["on"] / times["off"])
                for name in times:
                    rates[name].append(2 * images_done / times[name])
            r = statistics.median(ratios)
            step_ms = 1000 * IMAGES_PER_STEP / statistics.median(rates["off"])
            guard_ms = guard_work_ms(on.trainer)
            print(
                f"| {kind} | {statistics.median(rates['on']):.0f} | {statistics.median(rates['off']):.0f} | "
                f"{r:.3f} ({min(ratios):.3f}-{max(ratios):.3f}) | {guard_ms:.2f} ms, {100 * guard_ms / step_ms:.2f}% |"
            )
        print()


def guard_work_ms(trainer: BranchTrainer, repeats: int = 200) -> float:
    """The guard's own work per step, timed alone: the statistics' copy, the flags over the loss,
    gradients, statistics and weights, and the host's read of them (after a step, so gradients exist)."""
    total = torch.zeros((), device=trainer.precision.device)
    stats = StepStats(torch.zeros(1), torch.zeros(()), torch.zeros(1), [0])
    start = time.perf_counter()
    for _ in range(repeats):
        trainer.save_buffers()
        trainer.check_update(stats, total)
        stats.weights_finite = trainer.weights_finite()
        trainer.raise_if_nonfinite(stats)
    return 1000 * (time.perf_counter() - start) / repeats


RECIPE_SETS = {
    "rp, rp, rp": ["rp", "rp", "rp"],
    "rp, rp+augmix, rp+augmix (AugMix)": ["rp", "rp+augmix", "rp+augmix"],
    "rp, rpnb, rpnb (noise and blur)": ["rp", "rpnb", "rpnb"],
}


def recipes_table(args, images, labels) -> None:
    """The step cost of view recipes: 3 views of each sample, the same model and batch, interleaved."""
    model = args.models[0]
    fns = {
        name: ait_step_fn(model, images, labels, args.device, 3, "auto", recipes=r) for name, r in RECIPE_SETS.items()
    }
    rates = measure(fns, args.steps, args.repeats, warmup=2, device=args.device)
    first = next(iter(rates.values()))
    print(f"## {model}: view recipes, 3 views, {IMAGES_PER_STEP // 3 * 3} images per step\n")
    print("| views | images/s | step time vs rp x3 |\n|---|---:|---:|")
    for name, rate in rates.items():
        print(f"| {name} | {rate:.0f} | {first / rate:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["resnet32", "resnet110", "wrn16_4"])
    parser.add_argument("--views", nargs="+", type=int, default=[2, 3, 4], help="view counts for the scaling table")
    parser.add_argument("--steps", type=int, default=6, help="steps per measurement")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--quick", action="store_true", help="ResNet-32 only, 4 steps x 3 repeats")
    parser.add_argument("--json", help="also write the numbers to this JSON file")
    parser.add_argument("--rss-only", action="store_true", help="only the peak-memory table")
    parser.add_argument(
        "--guard-only", action="store_true", help="only the cost of the non-finite guard (AIT and baseline steps)"
    )
    parser.add_argument(
        "--recipes-only",
        action="store_true",
        help="only the cost of view recipes at 3 views: rp x3, AugMix's (rp, rp+augmix x2), noise and blur",
    )
    parser.add_argument("--rss-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rss_child:
        rss_child(args.rss_child, args.models[0], args.device)
        return
    if args.quick:
        args.models, args.steps, args.views = ["resnet32"], 4, [2, 3]

    if args.rss_only:
        print("| model | " + " | ".join(CONFIGS) + " |\n|---|" + "---:|" * len(CONFIGS))
        for model in args.models:
            row = [f"{peak_rss_mib(name, model, args.device):.0f}" for name in CONFIGS]
            print(f"| {model} | " + " | ".join(row) + " |")
        return
    images, labels = load_images(20000)
    if args.guard_only:
        guard_table(args, images, labels)
        return
    if args.recipes_only:
        recipes_table(args, images, labels)
        return
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}, "
        f"{IMAGES_PER_STEP} images per network per step; medians of {args.repeats} x {args.steps} steps\n"
    )
    results: dict[str, dict] = {}
    for model in args.models:
        fns = {
            "compute": compute_step_fn(model, args.device),
            "original": original_step_fn(model, images, labels, args.device),
            "ait": ait_step_fn(model, images, labels, args.device, 2, "auto"),
            "ait fp32": ait_step_fn(model, images, labels, args.device, 2, "fp32"),
            "baseline": ait_step_fn(model, images, labels, args.device, 1, "auto"),
        }
        rates = measure(fns, args.steps, args.repeats, warmup=2, device=args.device)
        pipeline = measure({"views": fns["ait"].pipeline_only}, args.steps * 4, args.repeats, 1, args.device)["views"]
        results[model] = {"images_per_s": rates, "pipeline_images_per_s": pipeline}
        print(f"## {model}")
        print("| configuration | images/s |\n|---|---:|")
        for name, rate in rates.items():
            print(f"| {name} | {rate:.0f} |")
        print(
            f"\nait / original (3/2): {rates['ait'] / rates['original']:.2f}x   "
            f"ait / compute (3/1): {rates['ait'] / rates['compute']:.2f}x   "
            f"ait fp32 / original: {rates['ait fp32'] / rates['original']:.2f}x"
        )
        print(f"AIT step time / baseline step time: {rates['baseline'] / rates['ait']:.3f}")
        print(f"input pipeline (sampling + views) share of the AIT step: {100 * rates['ait'] / pipeline:.1f}%\n")
        del fns

    model = args.models[0]
    fns = {f"{v} views": ait_step_fn(model, images, labels, args.device, v, "auto") for v in [1, *args.views]}
    rates = measure(fns, args.steps, args.repeats, warmup=2, device=args.device)
    results[f"{model}_views"] = rates
    print(f"## {model}: cost of views at {IMAGES_PER_STEP} images per step (1 view = baseline)")
    print("| views | samples per step | images/s | step time vs 1 view |\n|---:|---:|---:|---:|")
    for v, rate in zip([1, *args.views], rates.values()):
        print(f"| {v} | {IMAGES_PER_STEP // v} | {rate:.0f} | {rates['1 views'] / rate:.3f} |")

    # Evaluation: the four fixed test sets (4 x 10,000 images) vs one training epoch on 20,000 samples.
    step = ait_step_fn(model, images, labels, args.device, 2, "auto")
    net = step.trainer.networks[0]
    test = torch.from_numpy(images[:10000]).permute(0, 3, 1, 2).contiguous().to(args.device)
    start = time.perf_counter()
    for _ in range(4):
        predict_logits([net], test, step.trainer.prepare_eval, step.trainer.precision, 500)
    sync(args.device)
    eval_seconds = time.perf_counter() - start
    epoch_seconds = 2 * 20000 / results[model]["images_per_s"]["ait"]
    results["evaluation"] = {"four_test_sets_seconds": eval_seconds, "ait_epoch_20000_seconds": epoch_seconds}
    print(
        f"\nevaluation of 4 x 10,000 test images: {eval_seconds:.1f} s; one AIT epoch on 20,000 samples at the "
        f"measured rate: {epoch_seconds:.1f} s (ratio {eval_seconds / epoch_seconds:.2f})"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()

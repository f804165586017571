"""Where a training step's time goes: kernel time against the gaps between kernels (issue 21).

    python3 benchmarks/profile_step.py --out results/            # on a GPU: ResNet-32 AIT at 128, eager and captured
    python3 benchmarks/profile_step.py --model resnet20 --seeds 4 --modes eager graph
    .venv/bin/python benchmarks/profile_step.py --device cpu --steps 3 --batch 16 --out /tmp/profile   # try it here

Each mode's step (bench_train.ait_step_fn: ait's real step, as benchmarks/gpu.py times it) is
warmed up, then ``--steps`` steps run under ``torch.profiler`` between two synchronisations. On a
GPU the device is busy while one of its kernels runs: the union of the kernels' intervals, per
step, against the wall time per step; what is left is the GPU waiting for the host (launch gaps,
Python, syncs). On the CPU the same is measured for the top-level ATen operators, and what is left
is Python between them. The profiler slows the host, which widens the gaps: the same steps are
also timed without it ("unprofiled"), as benchmarks/gpu.py times them. Also per step: the kernels
(CPU: top-level operators), the launches the host made (cudaLaunchKernel and friends,
cudaGraphLaunch), and the kernels that took the most time.

Writes ``profile.json`` and one Chrome trace per mode (``trace_<mode>.json.gz``, for Perfetto
or chrome://tracing) into --out, and prints a table.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import shutil
import sys
import time
import traceback
from collections import Counter, defaultdict
from pathlib import Path

import torch
from torch.autograd import DeviceType
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_train import ait_step_fn, load_images, sync  # noqa: E402

from ait.engine.graphs import WARMUP_STEPS  # noqa: E402

# Host calls that launch device work. Kineto names them from its own table in some builds and with
# CUPTI's suffixes (_v7000, _ptsz) in others; a CUDA 13 build's __cudaLaunchKernel may even come out
# as "INVALID", so launches are also counted by the correlation id they share with their kernels.
LAUNCHES = (
    "cudaLaunchKernel",
    "cudaLaunchKernelExC",
    "cudaLaunchCooperativeKernel",
    "__cudaLaunchKernel",
    "cuLaunchKernel",
    "cuLaunchKernelEx",
    "cudaGraphLaunch",
    "cuGraphLaunch",
    "cudaMemcpyAsync",
    "cudaMemsetAsync",
)
API_SUFFIX = re.compile(r"(_ptsz|_ptds)?(_v\d+)?$")


def api_name(name: str) -> str:
    """A runtime or driver call's name without CUPTI's version suffix."""
    return API_SUFFIX.sub("", name)


def union_us(intervals: list[tuple[float, float]]) -> float:
    """Total length of the union of (start, end) intervals, in their unit."""
    total, end = 0.0, float("-inf")
    for start, stop in sorted(intervals):
        if stop <= end:
            continue
        total += stop - max(start, end)
        end = stop
    return total


def duration_us(event) -> float:
    return float(event.time_range.end - event.time_range.start)


def device_work(events) -> list:
    """Kernels, copies and fills on the device; not the spans kineto adds there for each
    record_function range (such as "Optimizer.step#SGD.step"), which cover the gaps between kernels."""
    return [e for e in events if e.device_type == DeviceType.CUDA and not getattr(e, "is_user_annotation", False)]


def summarize(events, steps: int, wall_s: float, cuda: bool, top: int = 10) -> dict:
    """The profile of ``steps`` steps that took ``wall_s``: busy time, gaps, kernels, launches."""
    events = list(events)
    if cuda:
        work, length = device_work(events), duration_us
    else:  # top-level operators: what runs between them is Python
        work = [e for e in events if e.device_type == DeviceType.CPU and e.cpu_parent is None]
        length = lambda e: float(e.cpu_time_total)  # noqa: E731
    busy_ms = union_us([(e.time_range.start, e.time_range.end) for e in work]) / 1000 / steps
    wall_ms = 1000 * wall_s / steps
    by_name: dict[str, list[float]] = defaultdict(lambda: [0.0, 0])
    for e in work:
        by_name[e.name][0] += length(e)
        by_name[e.name][1] += 1
    ranked = sorted(by_name.items(), key=lambda item: -item[1][0])[:top]
    row = {
        "wall_ms_per_step": wall_ms,
        "busy_ms_per_step": busy_ms,
        "busy_fraction": busy_ms / wall_ms if wall_ms > 0 else None,
        "gap_ms_per_step": wall_ms - busy_ms,
        "kernels_per_step": len(work) / steps,
        "launches_per_step": None,
        "top": [{"name": n, "ms_per_step": t / 1000 / steps, "calls_per_step": c / steps} for n, (t, c) in ranked],
    }
    if cuda:
        row.update(host_launches(events, work, steps))
        if not work:
            row["warning"] = "no device events: CUPTI recorded no GPU activity, so busy time and kernels are 0"
    return row


def host_launches(events, work: list, steps: int) -> dict:
    """Per step: launches by name and by correlation id, graph launches, copies; the raw call names."""
    host = [
        e
        for e in events
        if e.device_type == DeviceType.CPU and (e.name.startswith(("cu", "__cu")) or e.name == "INVALID")
    ]
    device_ids = {e.id for e in work}  # a runtime call and the device work it started share CUPTI's correlation id
    return {
        "launches_per_step": sum(api_name(e.name) in LAUNCHES for e in host) / steps,
        "launches_by_correlation_per_step": sum(e.id in device_ids for e in host) / steps,
        "graph_launches_per_step": sum(api_name(e.name) in ("cudaGraphLaunch", "cuGraphLaunch") for e in host) / steps,
        "copies_per_step": sum(e.name.startswith(("Memcpy", "Memset")) for e in work) / steps,
        "runtime_calls": dict(Counter(e.name for e in host).most_common(15)),
    }


def profile_mode(args, mode: str, images, labels, out: Path) -> dict:
    """Warm up the mode's step, profile ``args.steps`` of it, write its trace; its summary."""
    cuda = args.device.startswith("cuda")
    views = 2 if args.strategy == "ait" else 1
    step = ait_step_fn(
        args.model,
        images,
        labels,
        args.device,
        views,
        "auto",
        images_per_step=args.batch,
        cuda_graphs=mode == "graph",
        seeds=args.seeds,
    )
    for _ in range(args.warmup):  # the captured mode captures during these
        step()
    sync(args.device)
    start = time.perf_counter()  # the same steps unprofiled: the profiler's own overhead widens the gaps
    for _ in range(args.steps):
        step()
    sync(args.device)
    unprofiled_ms = 1000 * (time.perf_counter() - start) / args.steps
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    sync(args.device)
    with profile(activities=activities) as prof:
        start = time.perf_counter()
        for _ in range(args.steps):
            step()
        sync(args.device)
        wall_s = time.perf_counter() - start
    summary = summarize(prof.events(), args.steps, wall_s, cuda)  # before the export, which may fail
    trace = out / f"trace_{mode}.json.gz"  # tens of MB as plain JSON for a GPU step; Perfetto reads .gz
    try:
        plain = trace.with_suffix("")
        prof.export_chrome_trace(str(plain))
        with plain.open("rb") as src, gzip.open(trace, "wb") as dst:
            shutil.copyfileobj(src, dst)
        plain.unlink()
    except Exception as err:  # the numbers are kept without their trace
        summary["trace_error"] = f"{type(err).__name__}: {err}"[:400]
    return {"mode": mode, "trace": trace.name, "unprofiled_ms_per_step": unprofiled_ms, **summary}


def table(rows: list[dict], cuda: bool) -> str:
    unit = "kernels" if cuda else "top-level ops"
    lines = [
        f"| mode | ms/step unprofiled | ms/step | busy ms/step | busy | gap ms/step | {unit}/step | launches/step "
        "| top kernel |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        launches = "" if r["launches_per_step"] is None else f"{r['launches_per_step']:.0f}"
        first = r["top"][0]["name"][:60] if r["top"] else ""
        lines.append(
            f"| {r['mode']} | {r['unprofiled_ms_per_step']:.2f} | {r['wall_ms_per_step']:.2f} "
            f"| {r['busy_ms_per_step']:.2f} | {r['busy_fraction']:.0%} | {r['gap_ms_per_step']:.2f} "
            f"| {r['kernels_per_step']:.0f} | {launches} | {first} |"
        )
    return "\n".join(lines)


def parse_args(argv=None):
    default_device = "cuda" if torch.cuda.is_available() else "cpu"
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default=default_device, help=f"default here: {default_device}")
    p.add_argument("--model", default="resnet32")
    p.add_argument("--strategy", choices=["ait", "baseline"], default="ait")
    p.add_argument("--batch", type=int, default=128, help="images per network per step (default 128, the paper's)")
    p.add_argument("--seeds", type=int, default=1, help="networks stacked into one (ait.models.stacked)")
    p.add_argument("--modes", nargs="+", choices=["eager", "graph"], help="default: eager, and graph on CUDA")
    p.add_argument("--steps", type=int, default=20, help="profiled steps per mode")
    p.add_argument(
        "--warmup",
        type=int,
        default=5,
        help=f"steps before profiling (the captured mode captures on step {WARMUP_STEPS + 1}: at least that)",
    )
    p.add_argument("--out", default=os.environ.get("OUT") or "runs/profile", help="folder for the JSON and traces")
    args = p.parse_args(argv)
    if args.modes is None:
        args.modes = ["eager", "graph"] if args.device.startswith("cuda") else ["eager"]
    if "graph" in args.modes and not args.device.startswith("cuda"):
        p.error("--modes graph: CUDA graphs need --device cuda")
    if min(args.steps, args.batch, args.seeds) < 1 or args.warmup < 0:
        p.error("--steps, --batch and --seeds must be positive, --warmup not negative")
    if "graph" in args.modes and args.warmup < WARMUP_STEPS + 1:
        p.error(f"--warmup {args.warmup}: the captured mode captures on step {WARMUP_STEPS + 1}, so at least that")
    return args


def main(argv=None) -> int:
    """Profile each mode; profile.json is rewritten after each, so a later failure keeps the earlier.
    Exit status 1 when a mode failed or recorded no device work (the GPU check then fails)."""
    args = parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cuda = args.device.startswith("cuda")
    meta = {
        "device": torch.cuda.get_device_name(torch.device(args.device)) if cuda else "cpu",
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "model": args.model,
        "strategy": args.strategy,
        "batch": args.batch,
        "seeds": args.seeds,
        "steps": args.steps,
        "command": "python " + " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
    }
    images, labels = load_images(max(4096, 4 * args.batch * args.seeds))
    rows, problems = [], []
    for mode in args.modes:
        try:
            rows.append(profile_mode(args, mode, images, labels, out))
        except Exception as err:
            traceback.print_exc(limit=5)
            problems.append(f"{mode}: {type(err).__name__}: {err}"[:400])
            rows.append({"mode": mode, "error": problems[-1]})
        if rows[-1].get("warning"):
            problems.append(f"{mode}: {rows[-1]['warning']}")
        (out / "profile.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    print(table([r for r in rows if "error" not in r], cuda))
    print(f"results in {out / 'profile.json'}")
    for problem in problems:
        print(f"profile_step: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

"""Issue 9's evidence on a lent GPU: many small runs side by side on one GPU, inside a time budget.

ResNet-20 on 32x32 images is far too small to fill an H100 from one process (each step is a few
hundred tiny kernels, so one process mostly waits on Python), so this script keeps WORKERS
``ait train`` processes running at once and measures what that gives before it plans:

1. calibration: WORKERS short AIT runs side by side; their steady-state epochs give the aggregate
   steps/s of the GPU at that concurrency;
2. claim 1 on a longer schedule: CIFAR-10 and CIFAR-100, ResNet-20, baseline / AIT / compute-fair
   baseline (twice the epochs), seeds 0-2, with the largest epoch count from EPOCH_CHOICES that the
   calibration says fits in --claim1-share of the budget;
3. with the time left, the CPU presets' 15-epoch runs of claims 6, 2, 3 and 5, in that order.
   A job starts only when its predicted time fits before the deadline; one still running at the
   deadline is stopped and left out.

Runs go to ``runs/gpu/<name>/seed<S>`` under the usual names, so ``ait report`` reads them. At the
end, every finished run's small files (and claim 1's checkpoints, for evaluations on the CPU later)
are packed into a few tar files in --out.

    nvidia-cuda-mps-control -d        # MPS: the processes' kernels share the GPU instead of time-slicing it
    PYTHONPATH=src OMP_NUM_THREADS=1 python3 scripts/gpu_evidence.py --budget-s 520 --workers 14 \
        --claim1-share 0.75 --out results/
    # later, only what is missing, with the measured rate:
    PYTHONPATH=src OMP_NUM_THREADS=1 python3 scripts/gpu_evidence.py --budget-s 200 --workers 15 --rate 747 \
        --groups claim5 claim2-pair --skip-done --out results/
    # try the script itself on a CPU: 2 steps per epoch
    PYTHONPATH=src python3 scripts/gpu_evidence.py --device cpu --smoke --epochs 2 --workers 2 \
        --budget-s 200 --out /tmp/x

The data must be at ../shared/data as on the development machine (the presets' paths). Each run
logs to ``runs/gpu/<name>/seed<S>.log``; --out gets status.json (what ran, what was skipped and why),
runs-small.tar.gz and checkpoints-*.tar, to unpack in the repository root.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EPOCH_CHOICES = (200, 160, 120, 100, 80, 60, 50, 40, 30, 25, 20, 15)
STEPS_PER_EPOCH = {"baseline": 157, "ait": 313}  # 20,000 images; AIT's batch of 128 holds 64 samples x 2 views
STARTUP_S = 15.0  # import, CUDA context, data to the GPU: per process, before its first step


def train_command(config: str, run_dir: Path, overrides: list[str]) -> list[str]:
    """``python -m ait train CONFIG --run-dir RUN_DIR --overwrite --set O ...`` for one process."""
    cmd = [sys.executable, "-m", "ait", "train", config, "--run-dir", str(run_dir), "--overwrite"]
    for o in overrides:
        cmd += ["--set", o]
    return cmd


@dataclass(eq=False)  # hashable by identity: the pool keys on jobs
class Job:
    group: str  # "claim1", "claim6", ...
    config: str
    name: str
    seed: int
    overrides: list[str]  # besides name and seed
    steps: int  # optimiser steps, in units of one ResNet-20 forward+backward on 128 images
    keep_checkpoint: bool = False

    @property
    def run_dir(self) -> Path:
        return ROOT / "runs" / "gpu" / self.name / f"seed{self.seed}"

    def command(self, extra: list[str]) -> list[str]:
        return train_command(
            self.config,
            self.run_dir,
            [
                f"name={self.name}",
                f"seed={self.seed}",
                *self.overrides,
                "train.progress=plain",
                "train.num_threads=1",
                "out_dir=runs/gpu",
                *extra,
            ],
        )


def claim1_jobs(epochs: int) -> list[Job]:
    jobs = []
    eval_every = f"train.eval_every={max(epochs // 4, 1)}"
    for ds in ("cifar10", "cifar100"):
        for seed in (0, 1, 2):
            for kind, ep, per_epoch in (
                ("ait", epochs, STEPS_PER_EPOCH["ait"]),
                ("baseline_2x", 2 * epochs, STEPS_PER_EPOCH["baseline"]),
                ("baseline", epochs, STEPS_PER_EPOCH["baseline"]),
            ):
                config = f"configs/cpu/{ds}_resnet20_{'baseline' if kind == 'baseline_2x' else kind}.yaml"
                jobs.append(
                    Job(
                        "claim1",
                        config,
                        f"gpu_{ds}_resnet20_{kind}_e{epochs}",
                        seed,
                        [f"train.epochs={ep}", eval_every],
                        ep * per_epoch,
                        keep_checkpoint=True,
                    )
                )
    # longest first, so the short baselines fill the tail
    return sorted(jobs, key=lambda j: -j.steps)


def cpu_preset_jobs() -> list[Job]:
    """The 15-epoch CIFAR-100 runs of claims 6, 2, 3 and 5, exactly the CPU presets, in priority order."""
    base, ait = 15 * STEPS_PER_EPOCH["baseline"], 15 * STEPS_PER_EPOCH["ait"]
    jobs = []
    for layer in ("logits", "feature", "feature_map"):
        for metric in ("kl", "euclidean", "kl+euclidean"):
            jobs.append(
                Job(
                    "claim6",
                    "configs/cpu/cifar100_resnet20_ait.yaml",
                    f"gpu15_cifar100_resnet20_ait_consistency.layer={layer}_consistency.metric={metric}",
                    0,
                    [f"consistency.layer={layer}", f"consistency.metric={metric}"],
                    ait,
                )
            )
    for seed in (0, 1, 2):
        for kind in ("dml", "multi_ait"):
            jobs.append(
                Job(
                    "claim2",
                    f"configs/cpu/cifar100_resnet20_{kind}.yaml",
                    f"gpu15_cifar100_resnet20_{kind}",
                    seed,
                    [],
                    2 * base,
                )
            )
    for seed in (0, 1, 2):
        for noise in (20, 50, 80):
            for kind, steps in (("ait", ait), ("baseline", base)):
                jobs.append(
                    Job(
                        "claim3",
                        f"configs/cpu/cifar100_resnet20_noise{noise}_{kind}.yaml",
                        f"gpu15_cifar100_resnet20_noise{noise}_{kind}",
                        seed,
                        [],
                        steps,
                    )
                )
    for seed in (0, 1, 2):
        for weight in ("0", "0.5", "1", "2", "4"):
            jobs.append(
                Job(
                    "claim5",
                    "configs/cpu/cifar100_resnet20_ait.yaml",
                    f"gpu15_cifar100_resnet20_ait_consistency.weight={weight}",
                    seed,
                    [f"consistency.weight={weight}"],
                    ait,
                )
            )
    for seed in (0, 1, 2):
        for kind in ("dml", "multi_ait"):
            # ResNet-56 costs about 2.8 ResNet-20s
            jobs.append(
                Job(
                    "claim2-pair",
                    f"configs/cpu/cifar100_resnet20-resnet56_{kind}.yaml",
                    f"gpu15_cifar100_resnet20-resnet56_{kind}",
                    seed,
                    [],
                    int(3.8 * base),
                )
            )
    return jobs


def log(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


def calibrate(workers: int, extra: list[str], steps: int = 100, epochs: int = 3) -> float:
    """Aggregate steps/s of ``workers`` AIT processes side by side (median steady-state epoch)."""
    procs, dirs = [], []
    for k in range(workers):
        run_dir = Path("/tmp/ait-calibration") / f"w{k}"
        dirs.append(run_dir)
        cmd = train_command(
            "configs/cpu/cifar10_resnet20_ait.yaml",
            run_dir,
            [
                f"train.epochs={epochs}",
                f"train.max_steps_per_epoch={steps}",
                "data.test_limit=500",
                f"train.eval_every={epochs}",
                "train.progress=none",
                "train.num_threads=1",
                f"seed={k}",
                *extra,
            ],
        )
        procs.append(subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    per_epoch = []
    for p, run_dir in zip(procs, dirs):
        out, _ = p.communicate()
        if p.returncode != 0:
            raise SystemExit(f"calibration run {run_dir} failed:\n{out[-3000:]}")
        rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
        per_epoch += [r["epoch_seconds"] for r in rows[1:]]  # epoch 1 holds cuDNN's autotuning and the stagger
    per_epoch.sort()
    median = per_epoch[len(per_epoch) // 2]
    return workers * steps / median


def run_pool(jobs: list[Job], workers: int, rate: float, deadline: float, status: dict, extra: list[str]) -> None:
    """Run jobs (in list order) with at most ``workers`` at once; start one only if it fits."""
    per_process = rate / workers
    pending, running = list(jobs), {}
    while pending or running:
        for job, (proc, started, log_file) in list(running.items()):
            if proc.poll() is not None:
                log_file.close()
                ok = proc.returncode == 0 and (job.run_dir / "summary.json").is_file()
                status[str(job.run_dir)] = "done" if ok else f"failed (exit {proc.returncode})"
                log(f"{'done  ' if ok else 'FAILED'} {job.run_dir.relative_to(ROOT)} in {time.time() - started:.0f} s")
                del running[job]
        now = time.time()
        while pending and len(running) < workers:
            job = pending.pop(0)
            predicted = STARTUP_S + job.steps / per_process
            if now + predicted > deadline:
                status[str(job.run_dir)] = f"skipped (predicted {predicted:.0f} s, {deadline - now:.0f} s left)"
                continue
            job.run_dir.parent.mkdir(parents=True, exist_ok=True)
            log_file = open(job.run_dir.parent / f"{job.run_dir.name}.log", "w")
            proc = subprocess.Popen(job.command(extra), cwd=ROOT, stdout=log_file, stderr=subprocess.STDOUT)
            running[job] = (proc, now, log_file)
            log(f"start  {job.run_dir.relative_to(ROOT)} ({job.group}, {job.steps} steps, predicted {predicted:.0f} s)")
        if time.time() > deadline and running:
            for proc, _, _ in running.values():
                proc.send_signal(signal.SIGTERM)
            for job, (proc, _, log_file) in running.items():
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                log_file.close()
                status[str(job.run_dir)] = "stopped at the deadline"
                log(f"stopped {job.run_dir.relative_to(ROOT)} at the deadline")
            running.clear()
            for job in pending:
                status[str(job.run_dir)] = "skipped (deadline)"
            return
        time.sleep(1.0)


def pack(jobs: list[Job], status: dict, out: Path) -> None:
    """Small files of every finished run in one tar; claim 1's checkpoints in tars of at most ~14 MB."""
    out.mkdir(parents=True, exist_ok=True)
    done = [j for j in jobs if status.get(str(j.run_dir)) == "done"]
    with tarfile.open(out / "runs-small.tar.gz", "w:gz") as tar:
        for job in jobs:
            log_path = job.run_dir.parent / f"{job.run_dir.name}.log"
            if log_path.is_file():
                tar.add(log_path, arcname=str(log_path.relative_to(ROOT)))
        for job in done:
            for p in sorted(job.run_dir.rglob("*")):
                if p.is_file() and p.name != "checkpoint.pt":
                    tar.add(p, arcname=str(p.relative_to(ROOT)))
    part, size, index = None, 0, 0
    for job in done:
        ckpt = job.run_dir / "checkpoint.pt"
        if not job.keep_checkpoint or not ckpt.is_file():
            continue
        if part is None or size + ckpt.stat().st_size > 14e6:
            if part is not None:
                part.close()
            if index == 5:  # 8 files come back: status, small runs, log and 5 of these
                log("more checkpoints than the files that come back; the rest stay behind")
                part = None
                break
            index += 1
            part, size = tarfile.open(out / f"checkpoints-{index}.tar", "w"), 0
        part.add(ckpt, arcname=str(ckpt.relative_to(ROOT)))
        size += ckpt.stat().st_size
    if part is not None:
        part.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget-s", type=float, required=True, help="seconds from start until every run must stop")
    parser.add_argument("--workers", type=int, default=12, help="ait train processes side by side")
    parser.add_argument(
        "--claim1-share",
        type=float,
        default=0.6,
        help="part of the time after calibration that claim 1's runs may take",
    )
    parser.add_argument("--out", type=Path, required=True, help="folder for the packed results")
    parser.add_argument("--epochs", type=int, default=None, help="claim 1's epochs (default: from the calibration)")
    parser.add_argument("--device", default="cuda", help="train.device of every run")
    parser.add_argument("--smoke", action="store_true", help="2 steps per epoch, 200 test images: tries the script")
    parser.add_argument(
        "--groups",
        nargs="+",
        default=None,
        help="run only these groups (claim1 claim6 claim2 claim3 claim5 claim2-pair)",
    )
    parser.add_argument("--skip-done", action="store_true", help="leave out runs whose summary.json exists")
    parser.add_argument("--rate", type=float, default=None, help="aggregate steps/s; skips the calibration")
    args = parser.parse_args()
    extra = [f"train.device={args.device}"]
    if args.smoke:
        extra += ["train.max_steps_per_epoch=2", "data.test_limit=200"]
    start = time.time()
    deadline = start + args.budget_s
    for ds in ("cifar10", "cifar100"):
        for f in ("train-20000.npz", "test.npz"):
            if not (ROOT.parent / "shared" / "data" / ds / f).is_file():
                raise SystemExit(f"missing {ROOT.parent / 'shared' / 'data' / ds / f}")
    rate = args.rate or calibrate(args.workers, extra)
    log(
        f"calibration: {rate:.0f} steps/s with {args.workers} processes side by side "
        f"({time.time() - start:.0f} s so far)"
    )
    left = deadline - time.time()
    epochs = args.epochs
    if epochs is None:
        # The longest claim-1 jobs (AIT, and the baseline with twice the epochs) run on one process's
        # share, then a baseline in a second wave: two startups.
        per_process = rate / args.workers
        wave_steps = STEPS_PER_EPOCH["ait"] + STEPS_PER_EPOCH["baseline"]
        fits = [e for e in EPOCH_CHOICES if 2 * STARTUP_S + wave_steps * e / per_process <= args.claim1_share * left]
        epochs = fits[0] if fits else EPOCH_CHOICES[-1]
    log(f"claim 1 schedule: {epochs} epochs ({2 * epochs} for the compute-fair baseline); {left:.0f} s left")
    jobs = claim1_jobs(epochs) + cpu_preset_jobs()
    if args.groups:
        jobs = [j for j in jobs if j.group in args.groups]
    if args.skip_done:
        jobs = [j for j in jobs if not (j.run_dir / "summary.json").is_file()]
    if args.smoke:
        for job in jobs:
            job.steps = 2 * 30  # at most 30 epochs of 2 steps
    status: dict[str, str] = {}
    run_pool(jobs, args.workers, rate, deadline, status, extra)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "status.json").write_text(
        json.dumps(
            {
                "rate_steps_per_s": rate,
                "workers": args.workers,
                "claim1_epochs": epochs,
                "seconds": time.time() - start,
                "runs": status,
            },
            indent=1,
        )
    )
    pack(jobs, status, args.out)
    log(f"packed {sum(v == 'done' for v in status.values())} finished runs in {time.time() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

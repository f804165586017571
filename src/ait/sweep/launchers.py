"""Where the runs of a sweep go: several worker processes on this machine, or a SLURM job array.

Both start the same sweep several times; each worker walks the whole plan (or its shard) and
claims a run through the run's lock (:mod:`ait.engine.lock`), so any number of workers, started in
any order, train each run once: a run another worker holds is left to it, a run another worker
finished is skipped.

- :func:`run_workers` (``ait sweep ... --jobs N``): N processes of ``ait sweep``, the CPU's cores
  split between them (``train.num_threads``), and on GPUs each worker given one visible device
  (``CUDA_VISIBLE_DEVICES``), round-robin, so N > devices puts several runs on a device (the
  NVIDIA MPS daemon lets their kernels run side by side: ``nvidia-cuda-mps-control -d``).
- :func:`submit_array` (``--launcher submitit``): a job array through submitit, task i running
  shard i of N (:func:`run_shard`, as ``ait sweep ... --shard i/N`` would); ``cluster="local"``
  runs the tasks as local processes (tests).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from ait.sweep.errors import SweepError
from ait.sweep.execute import execute_plan
from ait.sweep.plan import Experiment, plan_experiments, shard


def visible_gpus() -> list[str]:
    """The CUDA device indices this process may use, as CUDA_VISIBLE_DEVICES names them."""
    import torch  # late: planning a sweep needs no torch

    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    listed = [d for d in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if d.strip()]
    return listed[:count] if listed else [str(i) for i in range(count)]


def run_workers(argv: Sequence[str], jobs: int, gpus: Sequence[str] | None = None) -> int:
    """Run ``ait sweep ARGV`` in ``jobs`` processes at once; returns the worst exit status.

    gpus: the devices to spread them over (default: the visible ones; none: the CPU, whose cores
    are split so that the workers do not oversubscribe them)."""
    gpus = visible_gpus() if gpus is None else list(gpus)
    threads = max(1, (os.cpu_count() or 1) // jobs)
    processes = []
    for k in range(jobs):
        env = dict(os.environ)
        extra = ["--set", f"train.num_threads={threads}"]
        if gpus:
            env["CUDA_VISIBLE_DEVICES"] = gpus[k % len(gpus)]
        print(
            f"sweep worker {k + 1}/{jobs}: " + (f"GPU {gpus[k % len(gpus)]}" if gpus else f"{threads} threads"),
            flush=True,
        )
        command = [sys.executable, "-m", "ait", "sweep", *argv, *extra]
        processes.append(subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True, bufsize=1))
    relays = [_relay(p.stdout, f"[worker {k + 1}] ") for k, p in enumerate(processes)]
    try:
        status = worst_status([p.wait() for p in processes])
    except KeyboardInterrupt:  # the workers got the signal too: each saves its run and stops
        status = worst_status([p.wait() for p in processes]) or 130
    for relay in relays:
        relay.join()
    return status


def _relay(stream: IO[str], prefix: str) -> threading.Thread:
    """Print each line of a worker's stdout with its label, so that the lines of workers that share
    one log say which worker trains, skips or fails which run (their stderr, the progress bars and
    tracebacks, passes through as it is)."""

    def copy() -> None:
        for line in stream:
            print(prefix + line, end="", flush=True)

    thread = threading.Thread(target=copy, daemon=True)
    thread.start()
    return thread


def worst_status(returncodes: Sequence[int]) -> int:
    """The exit status a shell would report for the worst of these: a worker killed by signal N
    (returncode -N: the OOM killer's SIGKILL, a segfault) counts as 128 + N, so it is not taken
    for success beside a worker that ended with 0."""
    return max((128 - code if code < 0 else code for code in returncodes), default=0)


@dataclass(frozen=True)
class ShardOptions:
    """How a task of a job array runs its shard (what ``ait sweep`` was given)."""

    continue_on_error: bool = False
    restart_interrupted: bool = False
    imports: list[str] = field(default_factory=list)  # --import modules, imported in the task first
    budget_s: float | None = None  # --budget-s, from the task's start
    # The run directories to do when the array was submitted: task i of n takes runs i, i+n, ...
    # of them; None: of the whole plan.
    run_dirs: list[str] | None = None


def run_shard(experiments: Sequence[Experiment], options: ShardOptions, index: int, count: int) -> int:
    """One task of a job array: the sweep's shard ``index`` of ``count`` (what a SLURM task runs)."""
    if options.imports:
        from ait.models import import_plugins

        import_plugins(options.imports)
    plan = plan_experiments(experiments)
    if options.run_dirs is None:
        plan = shard(plan, index, count)
    else:
        mine = set(options.run_dirs[index::count])
        plan = [p for p in plan if str(p.run_dir) in mine]
    result = execute_plan(
        plan,
        continue_on_error=options.continue_on_error,
        restart_interrupted=options.restart_interrupted,
        log=lambda text: print(text, flush=True),
        budget_s=options.budget_s,
    )
    if not result.ok:
        raise SweepError(f"shard {index}/{count}: {len(result.failures)} run(s) failed")  # the task fails
    return len(result.trained)


def submit_array(
    experiments: Sequence[Experiment],
    options: ShardOptions,
    count: int,
    folder: str | Path,
    cluster: str | None = None,
    partition: str | None = None,
    gpus_per_run: int = 0,
    time_min: int = 60,
    parallelism: int | None = None,
    wait: bool = False,
) -> list:
    """Submit the sweep as a job array of ``count`` tasks; returns submitit's jobs (waited for when
    ``wait``). cluster: None lets submitit choose (SLURM where sbatch exists), "local" or "slurm".
    Config paths must be absolute (the tasks may start elsewhere)."""
    try:
        import submitit
    except ImportError:
        raise SweepError("--launcher submitit needs submitit: pip install 'ait-train[slurm]'") from None
    chosen = cluster or submitit.AutoExecutor.which()
    _check_slurm_options(chosen, cluster, partition, gpus_per_run, parallelism)  # before --submitit-dir is made
    try:
        executor = submitit.AutoExecutor(folder=str(folder), cluster=chosen)
    except OSError as err:
        raise SweepError(f"--submitit-dir {str(folder)!r}: cannot be made ({err.strerror or err})") from None
    parameters: dict = {"timeout_min": time_min, "name": "ait-sweep"}
    if partition:
        parameters["slurm_partition"] = partition
    if gpus_per_run and chosen != "local":  # submitit's local tasks would all get GPU 0 from it
        parameters["gpus_per_node"] = gpus_per_run
    if parallelism:
        parameters["slurm_array_parallelism"] = parallelism
    executor.update_parameters(**parameters)
    n = list(range(count))
    jobs = executor.map_array(run_shard, [list(experiments)] * count, [options] * count, n, [count] * count)
    for job in jobs:
        print(f"submitted task {job.job_id} ({folder})", flush=True)
    if wait:
        failed = _wait_for(jobs)
        if failed:
            raise SweepFailed(f"{len(failed)} of {len(jobs)} tasks failed: {'; '.join(failed)}")
    return jobs


def _check_slurm_options(chosen: str, asked: str | None, partition, gpus_per_run, parallelism) -> None:
    """SLURM's options where submitit found no SLURM (no sbatch) are refused, not silently dropped:
    the tasks would run here, on this machine's CPU, all at once. Asked for --cluster local, they
    are only said to be left aside."""
    given = [
        flag
        for flag, value in (
            ("--partition", partition),
            ("--gpus-per-run", gpus_per_run),
            ("--array-parallelism", parallelism),
        )
        if value
    ]
    if chosen != "local" or not given:
        return
    if asked is None:
        raise SweepError(
            f"{', '.join(given)}: SLURM's, and there is no SLURM here (no sbatch found); "
            "pass --cluster local to run the tasks on this machine without them"
        )
    print(f"--cluster local: {', '.join(given)} left aside (SLURM's)", flush=True)


class SweepFailed(RuntimeError):
    """Runs of a sweep failed (their tasks' logs say why)."""

    exit_status = 1  # the sweep ran; some of its runs failed, as when ait sweep ends with 1


def _wait_for(jobs: list) -> list[str]:
    """Wait for every task; one line per failed task, naming its log."""
    from submitit.core.utils import UncompletedJobError

    failed = []
    for job in jobs:
        try:
            job.result()
        except UncompletedJobError:  # FailedJobError too: the task raised, or never finished
            failed.append(f"task {job.job_id} (log: {job.paths.stderr})")
    return failed

"""``ait sweep``: its parser and handler (the plan is :mod:`ait.sweep`'s, the workers and job
arrays :mod:`ait.sweep.launchers`').

    ait sweep configs/cpu/cifar100_resnet20_ait.yaml --seeds 0 1 2 --grid consistency.weight=0,0.5,1,2,4
    ait sweep sweeps/lambda.yaml --jobs 2                 # a sweep file, two workers on this machine
    ait sweep sweeps/lambda.yaml --status                 # done, running, failed, to do
    ait sweep sweeps/lambda.yaml --launcher submitit --partition gpu --gpus-per-run 1 --array-size 8
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from ait.cli_args import count_int, positive_int, positive_seconds, seed_int
from ait.config import add_override_option
from ait.sweep.errors import SweepError
from ait.sweep.execute import execute_plan
from ait.sweep.files import is_sweep_file, read_sweep_file
from ait.sweep.plan import Experiment, parse_shard, plan_experiments, shard
from ait.sweep.state import status_lines

# submitit's options and their defaults: given with the local launcher they would do nothing.
SUBMITIT_OPTIONS = {
    "cluster": None,
    "array_size": None,
    "array_parallelism": None,
    "partition": None,
    "gpus_per_run": 0,
    "time_min": 60,
    "submitit_dir": "runs/submitit",
    "wait": False,
}


def add_sweep_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "sweep",
        help="train a grid of runs (configs x --grid x --seeds, or a sweep file), skipping finished ones",
        description="Train every combination of CONFIG, --grid values and --seeds, or every experiment of a "
        "sweep file (a YAML file with experiments:). Finished runs (summary.json present) are skipped; "
        "interrupted ones are resumed from their checkpoint (or restarted without one). Any number of "
        "sweep processes may work on one plan: each run is claimed through its lock.",
    )
    p.add_argument("configs", nargs="+", metavar="CONFIG", help="YAML config files (see configs/), or one sweep file")
    p.add_argument(
        "--seeds",
        nargs="+",
        type=seed_int,
        default=None,
        metavar="SEED",
        help="seeds to run for every config and grid point (default: each config's own seed)",
    )
    p.add_argument(
        "--grid",
        action="append",
        default=[],
        metavar="KEY=V1,V2,...",
        help="values to sweep for one config key; several --grid options make a cartesian product. "
        "Lists go in brackets: --grid 'strategy.views=[rp,rp],[rp,rg]'",
    )
    add_override_option(p, "override a config value in every run, e.g. --set train.epochs=5")
    p.add_argument("--dry-run", action="store_true", help="print the plan and the run directories; train nothing")
    p.add_argument("--status", action="store_true", help="print each run: done, running, failed, to do; train nothing")
    p.add_argument(
        "--evaluate",
        action="store_true",
        help="run the sweep file's eval: on every finished run not yet evaluated (after, or beside, the training); "
        "train nothing",
    )
    p.add_argument(
        "--continue-on-error",
        action="store_true",
        help="after a failed run, go on with the others (default: stop at the first failure)",
    )
    p.add_argument(
        "--restart-interrupted",
        action="store_true",
        help="train interrupted runs again from scratch (default: resume them from checkpoint.pt); "
        "not with several workers on one plan",
    )
    _add_scale_arguments(p)
    p.set_defaults(handler=run_sweep_command)
    return p


def _add_scale_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--shard",
        metavar="I/N",
        default=None,
        help="only runs I, I+N, I+2N, ... of the plan (default: from SLURM_ARRAY_TASK_ID and _COUNT when set)",
    )
    p.add_argument(
        "--jobs", type=positive_int, default=1, metavar="N", help="N worker processes at once on this machine"
    )
    p.add_argument(
        "--budget-s",
        type=positive_seconds,
        default=None,
        metavar="S",
        help="start a run only when its predicted time fits in the S seconds from the sweep's start "
        "(predicted from finished runs, or a short calibration)",
    )
    p.add_argument("--launcher", choices=("local", "submitit"), default="local", help="submitit: a SLURM job array")
    p.add_argument(
        "--cluster",
        choices=("slurm", "local"),
        default=SUBMITIT_OPTIONS["cluster"],
        help="submitit's cluster: slurm (default where sbatch exists) or local",
    )
    p.add_argument(
        "--array-size",
        type=positive_int,
        default=SUBMITIT_OPTIONS["array_size"],
        metavar="N",
        help="submitit: tasks (default and most: one per run to do)",
    )
    p.add_argument(
        "--array-parallelism",
        type=positive_int,
        default=SUBMITIT_OPTIONS["array_parallelism"],
        metavar="N",
        help="submitit: tasks at once",
    )
    p.add_argument("--partition", default=SUBMITIT_OPTIONS["partition"], help="submitit: the SLURM partition")
    p.add_argument(
        "--gpus-per-run",
        type=count_int,
        default=SUBMITIT_OPTIONS["gpus_per_run"],
        metavar="G",
        help="submitit: GPUs of each task",
    )
    p.add_argument(
        "--time-min",
        type=positive_int,
        default=SUBMITIT_OPTIONS["time_min"],
        metavar="MIN",
        help="submitit: time limit of a task",
    )
    p.add_argument(
        "--submitit-dir", default=SUBMITIT_OPTIONS["submitit_dir"], metavar="DIR", help="submitit: its logs and pickles"
    )
    p.add_argument(
        "--wait", action="store_true", default=SUBMITIT_OPTIONS["wait"], help="submitit: wait for every task to end"
    )


def experiments_from_args(args: argparse.Namespace) -> list[Experiment]:
    """A sweep file's experiments (with --set last), or the one experiment of CONFIG... --grid --seeds."""
    sweep_files = [c for c in args.configs if is_sweep_file(c)]
    if sweep_files and len(args.configs) > 1:
        raise SweepError(f"{sweep_files[0]} is a sweep file: give it alone (one sweep file, or config files)")
    if sweep_files:
        if args.seeds or args.grid:
            raise SweepError(f"{args.configs[0]} is a sweep file: give seeds and grids in it, not as --seeds/--grid")
        experiments, common = read_sweep_file(args.configs[0])
        return [dataclasses.replace(e, overrides=[*common, *e.overrides, *args.overrides]) for e in experiments]
    return [Experiment(list(args.configs), args.seeds, args.grid, list(args.overrides))]


def _absolute(config):
    return str(Path(config).resolve()) if isinstance(config, (str, Path)) else config


def worker_argv(args: argparse.Namespace) -> list[str]:
    """The arguments that give another process on this machine this sweep."""
    argv = list(args.configs)
    argv += ["--seeds", *map(str, args.seeds)] if args.seeds else []
    for option, values in (
        ("--grid", args.grid),
        ("--set", args.overrides),
        ("--import", getattr(args, "imports", [])),
    ):
        for value in values:
            argv += [option, value]
    argv += ["--continue-on-error"] if args.continue_on_error else []
    argv += ["--budget-s", str(args.budget_s)] if args.budget_s is not None else []
    argv += ["--restart-interrupted"] if args.restart_interrupted else []
    return argv


def _check_launcher_options(args: argparse.Namespace) -> None:
    """SweepError when a submitit option is given without ``--launcher submitit``: it would be ignored."""
    if args.launcher == "submitit":
        return
    given = [k for k, default in SUBMITIT_OPTIONS.items() if getattr(args, k, default) != default]
    if given:
        option = "--" + given[0].replace("_", "-")
        raise SweepError(f"{option} applies to --launcher submitit only (this sweep runs here: --launcher local)")


def run_sweep_command(args: argparse.Namespace) -> int:
    """``ait sweep``: 0 when every run is done, 1 when some failed (errors: see :func:`ait.cli.run_handler`)."""
    _check_launcher_options(args)
    experiments = experiments_from_args(args)
    plan = plan_experiments(experiments)
    selected = parse_shard(args.shard)
    if selected is not None:
        plan = shard(plan, *selected)
    if args.status:
        from ait.sweep.evals import eval_summary

        evaluations = eval_summary(plan)
        print("\n".join([*status_lines(plan), *([evaluations] if evaluations else [])]))
        return 0
    if args.evaluate:
        from ait.sweep.evals import evaluate_plan

        evaluate_plan(plan, log=lambda text: print(text, flush=True))
        return 0
    if args.launcher == "submitit" and not args.dry_run:
        from ait.sweep.launchers import ShardOptions, submit_array

        conflicts = [p for p in plan if p.status == "conflict"]
        if conflicts:  # as execute_plan refuses them: no task would train them
            raise SweepError(f"{len(conflicts)} run directories are in conflict; first: {conflicts[0].reason}")
        # The tasks share out the runs to do now (not the whole plan: done runs would leave tasks idle).
        to_do = [str(p.run_dir) for p in plan if p.status in ("todo", "interrupted")]
        if not to_do:
            print(f"sweep: {len(plan)} runs, all done: nothing to submit", flush=True)
            return 0
        count = min(args.array_size or len(to_do), len(to_do))  # a task with no run would start for nothing
        if args.array_size and args.array_size > count:
            print(f"--array-size {args.array_size}: {len(to_do)} runs to do, so {count} tasks", flush=True)
        folder = Path(args.submitit_dir).resolve()
        imports = list(getattr(args, "imports", []))
        options = ShardOptions(args.continue_on_error, args.restart_interrupted, imports, args.budget_s, to_do)
        # The tasks may start in another folder (a node's): the configs by absolute path.
        experiments = [dataclasses.replace(e, configs=[_absolute(c) for c in e.configs]) for e in experiments]
        cluster = (args.cluster, args.partition, args.gpus_per_run, args.time_min, args.array_parallelism, args.wait)
        submit_array(experiments, options, count, folder, *cluster)
        return 0
    if args.jobs > 1 and not args.dry_run:
        from ait.sweep.launchers import run_workers

        return run_workers(worker_argv(args) + ([f"--shard={args.shard}"] if args.shard else []), args.jobs)
    result = execute_plan(
        plan,
        dry_run=args.dry_run,
        continue_on_error=args.continue_on_error,
        log=lambda text: print(text, flush=True),
        restart_interrupted=args.restart_interrupted,
        budget_s=args.budget_s,
    )
    return 0 if result.ok else 1

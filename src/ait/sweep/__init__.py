"""Plan and run a grid of training runs (configs x grid points x seeds, or a sweep file's experiments).

    ait sweep configs/cpu/cifar100_resnet20_ait.yaml --seeds 0 1 2 --grid consistency.weight=0,0.5,1,2,4
    ait sweep configs/cpu/*.yaml --seeds 0 1 --dry-run           # the plan only, trains nothing

Every run gets its own directory, ``default_run_dir`` of its config after the overrides:
``OUT_DIR/NAME/seedSEED``. With ``--grid``, NAME gets a suffix per grid key, e.g.
``cpu_cifar100_resnet20_ait_consistency.weight=2``, so grid points never share a directory.

Re-running a sweep is safe and cheap:

- a run whose directory holds ``summary.json`` is complete and is skipped (after checking that its
  saved config is the planned one: a different config there is an error, never silently reused);
- a run directory without ``summary.json`` was interrupted: with a ``checkpoint.pt`` it is continued
  exactly where it stopped (the engine's resume, which refuses a checkpoint of another config);
  without one, or with ``--restart-interrupted``, it is deleted and trained again from scratch;
- a directory at a run's path that does not look like a run directory is never deleted: error.

Ctrl-C (or SIGTERM) stops the sweep after the current run saved its checkpoint; the same command
continues it. Several processes may run one plan (``--jobs``, job arrays: :mod:`ait.sweep.launchers`):
each run is claimed through its lock, and its state is looked at again just before it is trained.

From Python::

    >>> from ait.sweep import plan_sweep, run_sweep
    >>> grid = {"consistency.weight": [0.5, 1, 2]}
    >>> plan = plan_sweep(["configs/cpu/cifar10_resnet20_ait.yaml"], seeds=[0, 1], grid=grid)  # trains nothing
    >>> len(plan), str(plan[0].run_dir)
    (6, 'runs/cpu_cifar10_resnet20_ait_consistency.weight=0.5/seed0')
    >>> smoke = "configs/smoke/synthetic_resnet20_baseline.yaml"
    >>> result = run_sweep([smoke], seeds=[0, 1], overrides=["train.epochs=1", "out_dir=sweeps"])  # doctest: +ELLIPSIS
    sweep: 2 runs, 0 done, 2 to do
    ...
    >>> result.ok, len(result.trained)
    (True, 2)

The package, each module importing only those below it (a contract in pyproject.toml): ``cli``
(the command) > ``launchers`` (workers, job arrays) | ``evals`` (``--evaluate``) > ``execute``
(running a plan) | ``files`` (sweep files) > ``plan`` > ``state`` (what a run directory holds) >
``errors``.
"""

from __future__ import annotations

from ait.sweep.errors import SweepError, SweepRunFailed
from ait.sweep.execute import SweepResult, describe_plan, execute_plan, run_sweep
from ait.sweep.files import is_sweep_file, read_sweep_file
from ait.sweep.plan import (
    EvalSpec,
    Experiment,
    PlannedRun,
    canonical_value,
    name_suffix,
    parse_grid,
    parse_shard,
    plan_experiments,
    plan_sweep,
    shard,
    split_values,
)
from ait.sweep.state import ERROR_FILE, run_state, run_status, status_lines

__all__ = [
    "ERROR_FILE",
    "EvalSpec",
    "Experiment",
    "PlannedRun",
    "SweepError",
    "SweepResult",
    "SweepRunFailed",
    "canonical_value",
    "describe_plan",
    "execute_plan",
    "is_sweep_file",
    "name_suffix",
    "parse_grid",
    "parse_shard",
    "plan_experiments",
    "plan_sweep",
    "read_sweep_file",
    "run_state",
    "run_status",
    "run_sweep",
    "shard",
    "split_values",
    "status_lines",
]

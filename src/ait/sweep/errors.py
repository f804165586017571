"""The sweep's errors, with the exit status `ait` ends with (ait.cli.run_handler)."""

from __future__ import annotations


class SweepError(RuntimeError):
    """The sweep cannot be planned (bad grid, colliding runs, a foreign directory in the way)."""

    exit_status = 2  # `ait` ends with this status and a one-line message (ait.cli.run_handler)


class SweepRunFailed(SweepError):
    """A run of the sweep failed (and ``continue_on_error`` was off)."""

    exit_status = 1

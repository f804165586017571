"""Reports built only from run directories: Markdown tables of the paper and PNG figures.

    ait report runs/ --out reports/cpu            # every run under runs/, grouped by configuration

From Python::

    >>> from ait.report import build_report
    >>> build_report(["runs"], "reports/smoke")
    PosixPath('reports/smoke/report.md')

Headline numbers are final-epoch top-1, mean ± sample std over seeds; see :mod:`ait.report.build`.
"""

from ait.report.build import build_report
from ait.report.cli import add_report_parser, run_report_command
from ait.report.groups import Group, Stat, group_runs
from ait.report.records import ReportError, RunRecord, discover_run_dirs, load_run, load_runs

__all__ = [
    "build_report",
    "add_report_parser",
    "run_report_command",
    "ReportError",
    "Group",
    "RunRecord",
    "Stat",
    "discover_run_dirs",
    "group_runs",
    "load_run",
    "load_runs",
]

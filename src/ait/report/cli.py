"""``ait report RUN_DIRS... --out DIR``."""

from __future__ import annotations

import argparse


def add_report_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "report",
        help="tables (Markdown) and plots (PNG) from run directories",
        description="Find every run directory (holding summary.json) under RUN_DIRS, group runs by configuration "
        "(mean ± std over seeds) and write DIR/report.md with the paper's tables and figures "
        "where their runs exist, plus DIR/plots/*.png.",
    )
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run directories or folders above them (searched)")
    p.add_argument("--out", required=True, metavar="DIR", help="where report.md and plots/ are written")
    p.set_defaults(handler=run_report_command)
    return p


def run_report_command(args: argparse.Namespace) -> int:
    """Write the report and print its path: 0. Skipped malformed runs are warned about on stderr;
    nothing to report is a ReportError (exit status 2, see :func:`ait.cli.run_handler`)."""
    from ait.report.build import build_report

    print(build_report(args.run_dirs, args.out))
    return 0

"""``ait report RUN_DIRS... --out DIR``."""

from __future__ import annotations

import argparse
import re


def add_report_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "report",
        help="tables (Markdown) and plots (PNG) from run directories",
        description="Find every run directory (holding summary.json) under RUN_DIRS, group runs by configuration "
        "(mean ± std over seeds) and write DIR/report.md with the paper's tables and figures "
        "where their runs exist, plus DIR/plots/*.png.",
    )
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run directories or folders above them (searched)")
    p.add_argument("--out", metavar="DIR", help="where report.md and plots/ are written")
    p.add_argument("--csv", metavar="DIR", help="write DIR/results.csv: every number, one row per run and metric")
    p.add_argument("--json", metavar="DIR", help="write DIR/results.json: the same rows as JSON records")
    p.add_argument(
        "--records",
        metavar="DIR",
        help="copy each finished run's record (summary, config, env, metrics, evaluations; no checkpoint) "
        "to DIR/<name>/seed<k> (out_dir's layout, from its summary), "
        "where ait report and ait sweep --set out_dir=DIR read it as a finished run",
    )
    p.add_argument(
        "--pool-devices",
        action="store_true",
        help="pool the seeds of runs that differ only in where they ran (train.device, the data files' "
        "location; the data's fingerprint must match), the devices named",
    )
    p.set_defaults(handler=run_report_command)
    return p


def run_report_command(args: argparse.Namespace) -> int:
    """Write the report and/or the tables as data and print their paths: 0. Skipped malformed runs are
    warned about on stderr; nothing to report is a ReportError (exit status 2, see :func:`ait.cli.run_handler`)."""
    from ait.report.archive import keep_records
    from ait.report.build import build_report, build_tables
    from ait.report.records import ReportError

    if not (args.out or args.csv or args.json or args.records):
        raise ReportError("say where to write: --out DIR (report.md), --csv DIR, --json DIR or --records DIR")
    _check_destinations(args)
    if args.records:
        for path in keep_records(args.run_dirs, args.records):
            print(path)
    if args.out:
        print(build_report(args.run_dirs, args.out, pool_devices=args.pool_devices))
    quiet = (lambda text: None) if args.out else None  # the report has named the runs it left out
    for path in build_tables(args.run_dirs, args.csv, args.json, log=quiet):
        print(path)
    return 0


def _check_destinations(args: argparse.Namespace) -> None:
    """ReportError for a refused destination before anything is written, not after the earlier ones were."""
    from ait.report.build import check_out_dir
    from ait.report.data import table_path
    from ait.report.outputs import check_folder

    if args.out:
        check_out_dir(args.out)
    for folder, name in ((args.csv, "results.csv"), (args.json, "results.json")):
        if folder:
            table_path(folder, name)
    if args.records:
        check_folder(args.records)


def add_interval_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "interval",
        help="the 95%% confidence interval of a difference quoted in a document (paired or Welch)",
        description="The interval ait report gives, from numbers alone: B - A with its 95% interval. "
        "paired: per-seed values of both groups in seed order (V1,V2,...); welch: each group's MEAN±STD/N.",
    )
    # Values may start with a minus (a difference: -1.2,0.4,0.3): read them as values, not as options.
    # argparse's own pattern admits only a single negative number such as -1.2.
    p._negative_number_matcher = re.compile(r"^-\.?\d")
    p.add_argument("test", choices=("paired", "welch"))
    p.add_argument("a", metavar="A", help="group A: V1,V2,... (paired) or MEAN±STD/N (welch; +- works too)")
    p.add_argument("b", metavar="B", help="group B, the same way; the interval is of B - A")
    p.set_defaults(handler=run_interval_command)
    return p


def run_interval_command(args: argparse.Namespace) -> int:
    """Print ``"+3.35 [+2.80, +3.89] paired"``; bad numbers are a ReportError (exit status 2)."""
    from ait.report.records import ReportError
    from ait.report.stats import quoted_interval

    try:
        print(quoted_interval(args.test, args.a, args.b).fmt())
    except ValueError as err:
        raise ReportError(str(err)) from None
    return 0

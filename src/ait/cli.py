"""The ``ait`` command line.

    ait train CONFIG [--set KEY=VALUE ...] [--run-dir DIR] [--overwrite]
    ait train --resume RUN_DIR      # continue an interrupted run exactly where it stopped
    ait export RUN_DIR --out FILE.safetensors|FILE.onnx|FILE.pt2
    ait predict RUN_DIR IMAGE... [--top-k 5]
    ait eval RUN_DIR... [--transfer] [--variation] [--tsne] [--all]
    ait sweep CONFIG... [--seeds 0 1 2] [--grid KEY=V1,V2] [--set KEY=VALUE]
    ait report RUN_DIR... --out DIR
    ait demo [--data PATH] [--epochs N] [--out-dir DIR]
    ait models                      # the registered architectures
    ait train CONFIG --import my_models   # models of your own module (ait.models.register)
    ait config CONFIG [--set ...]   # print the resolved config without training

One shape for every sub-command: its parser sets ``handler`` (a function of the parsed arguments
that returns an exit status, or None for 0), :func:`main` calls ``args.handler(args)`` through
:func:`run_handler`, and that one wrapper turns the project's errors into one line on stderr.
An error says how the command ends by its ``exit_status`` attribute (2 for bad input: configs,
data, run directories, checkpoints, sweeps, reports; 1 for a run that failed; 128 + N for a run
stopped by signal N after saving) and ``exit_label`` (the words before the message, "error: " by
default); anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from pathlib import Path

from ait.cli_args import CommandParser, count_int, positive_int


def _add_imports(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--import",
        dest="imports",
        action="append",
        default=[],
        metavar="MODULE",
        help="import a module of your own first (a name, or a .py file) whose models call "
        "ait.models.register; a run directory never imports one on its own (repeatable)",
    )


def build_parser() -> argparse.ArgumentParser:
    from ait.config import add_override_option  # light: no torch

    parser = CommandParser(prog="ait", description="Augmentation-invariant training of image classifiers.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train one run from a YAML config, or continue one (--resume)")
    p.add_argument("config", nargs="?", help="YAML config file (see configs/); omitted with --resume")
    add_override_option(p)
    p.add_argument("--run-dir", help="run directory (default: OUT_DIR/NAME/seedSEED from the config)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing run directory")
    p.add_argument(
        "--resume", metavar="RUN_DIR", help="continue the interrupted run in RUN_DIR from its checkpoint (same config)"
    )
    p.add_argument(
        "--allow-data-change",
        action="store_true",
        help="continue although the data's fingerprint differs from the one the checkpoint recorded",
    )
    p.set_defaults(handler=train_command)

    p = sub.add_parser("export", help="write a trained network as .safetensors, ONNX or a torch.export program")
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run directory (or an exported .safetensors file)")
    p.add_argument("--out", required=True, help="output file (never overwritten): .safetensors, .onnx or .pt2")
    p.add_argument("--format", choices=("safetensors", "onnx", "exported"), help="default: from --out's suffix")
    p.add_argument(
        "--network",
        type=count_int,
        default=None,
        help="which network, from 0 (default: every network of a run directory into .safetensors, else 0)",
    )
    p.set_defaults(handler=export_command)

    p = sub.add_parser("predict", help="the top classes of image files, by a trained network")
    p.add_argument("model", metavar="RUN_DIR", help="a run directory or an exported .safetensors file")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files of any size (resized and centre-cropped)")
    p.add_argument("--top-k", type=positive_int, default=5, help="classes shown per image (default: 5)")
    p.add_argument("--network", type=count_int, default=0, help="which network of the run, from 0 (default: 0)")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:1, ...")
    p.set_defaults(handler=predict_command)

    p = sub.add_parser("config", help="print the resolved config (after --set) and exit")
    p.add_argument("config")
    add_override_option(p)
    p.set_defaults(handler=config_command)

    p = sub.add_parser("demo", help="train baseline and AIT side by side on a small offline dataset")
    p.add_argument(
        "--data",
        default=None,
        help="Fashion-MNIST IDX folder (default: /usr/share/datasets/fashion-mnist), or a folder "
        "with train*.npz and test.npz such as ../shared/data/cifar10",
    )
    p.add_argument("--epochs", type=positive_int, default=None, help="epochs per run (default: the demo's own)")
    p.add_argument(
        "--train-limit", type=positive_int, default=None, help="training images used (default: the demo's own)"
    )
    p.add_argument("--out-dir", default="runs", help="where the demo's run directories go (default: runs)")
    p.set_defaults(handler=demo_command)

    p = sub.add_parser("models", help="list the registered architectures (with --import: yours too)")
    p.set_defaults(handler=models_command)
    models_parser = p

    from ait.evaluate.cli import add_eval_parser
    from ait.report.cli import add_interval_parser, add_report_parser
    from ait.sweep.cli import add_sweep_parser

    eval_parser, sweep_parser = add_eval_parser(sub), add_sweep_parser(sub)
    add_report_parser(sub)  # reads run files only: needs no model of anyone's
    add_interval_parser(sub)
    for name in ("train", "export", "predict", "config"):
        _add_imports(sub.choices[name])
    for p in (models_parser, eval_parser, sweep_parser):
        _add_imports(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as stop:  # --help (0) or a refused argument (2, one line): a status, as for any error
        return 0 if stop.code is None else stop.code if isinstance(stop.code, int) else 2
    try:
        return run_handler(args)
    except BrokenPipeError:  # `ait sweep ... --dry-run | head`: the reader has gone; no traceback
        if not _stdout_reader_gone():
            raise  # another pipe or socket: not the user's `| head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # Python's own recipe for stdout at exit
        return 128 + 13  # the shell's status for SIGPIPE


def _stdout_reader_gone() -> bool:
    """Whether stdout is a pipe whose reading end is closed (poll reports an error on it)."""
    import select

    if not hasattr(select, "poll"):  # Windows: no poll; a broken pipe there is stdout's in practice
        return True
    poller = select.poll()
    poller.register(sys.stdout.fileno(), select.POLLOUT)
    return any(event & (select.POLLERR | select.POLLHUP) for _, event in poller.poll(0))


def run_handler(args: argparse.Namespace) -> int:
    """``args.handler(args)``; the project's errors become one line on stderr and their exit status."""
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _one_line_warnings(args.command)
            if getattr(args, "imports", None):
                from ait.models import import_plugins

                import_plugins(args.imports)
            status = args.handler(args)
    except KeyboardInterrupt:
        print(f"ait {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as err:
        status = getattr(err, "exit_status", None)
        if not isinstance(status, int):
            raise  # not an error of the user's input or of the run: a bug, with its traceback
        print(f"ait {args.command}: {getattr(err, 'exit_label', 'error: ')}{err}", file=sys.stderr)
        return status
    return 0 if status is None else int(status)


PACKAGE_DIR = Path(__file__).resolve().parent


def _one_line_warnings(command: str):
    """Python's warning display, but a warning ait raises as one line (``ait eval: warning: ...``,
    without the file, line and source); other libraries' warnings keep their form."""
    shown = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if Path(filename).resolve().is_relative_to(PACKAGE_DIR):
            print(f"ait {command}: warning: {message}", file=file or sys.stderr)
        else:
            shown(message, category, filename, lineno, file, line)

    return show


# ----------------------------------------------------------------------------------------------
# The handlers of the commands defined here; eval, sweep and report have theirs beside their code.
# Imports are late so that `ait --help` and `ait config` stay quick.


def train_command(args: argparse.Namespace) -> None:
    from ait.config import ConfigError
    from ait.engine.run import train

    config, run_dir = args.config, args.run_dir
    if args.resume:
        if run_dir and Path(run_dir) != Path(args.resume):
            raise ConfigError("--resume RUN_DIR and --run-dir name different directories")
        run_dir = args.resume
        if not Path(run_dir).is_dir():
            what = "not a directory" if Path(run_dir).exists() else "no such directory"
            raise ConfigError(f"--resume {run_dir}: {what} (expected the run directory to continue)")
        if not config and not (Path(run_dir) / "config.yaml").is_file():
            raise ConfigError(f"--resume {run_dir}: not a run directory (it has no config.yaml)")
        config = config or str(Path(run_dir) / "config.yaml")
    elif not config:
        raise ConfigError("a config file is needed (or --resume RUN_DIR)")
    summary = train(
        config,
        args.overrides,
        run_dir=run_dir,
        overwrite=args.overwrite,
        resume=bool(args.resume),
        allow_data_change=args.allow_data_change,
    )
    print(summary["run_dir"])


def export_command(args: argparse.Namespace) -> None:
    from ait.evaluate.export import export

    print(export(args.run_dir, args.out, args.format, args.network))


def predict_command(args: argparse.Namespace) -> None:
    from ait.evaluate.inference import load_model

    model = load_model(args.model, args.network, args.device)
    for path, ranked in zip(args.images, model.top_k(args.images, args.top_k)):
        print(f"{path}: " + ", ".join(f"{name} {100 * p:.1f}%" for name, p in ranked))


def config_command(args: argparse.Namespace) -> None:
    from ait.config import dump_yaml, load_config

    print(dump_yaml(load_config(args.config, args.overrides)), end="")


def demo_command(args: argparse.Namespace) -> None:
    from ait.demo import run_demo

    run_demo(data=args.data, epochs=args.epochs, train_limit=args.train_limit, out_dir=args.out_dir)


def models_command(args: argparse.Namespace) -> None:
    from ait import models
    from ait.models.specs import LIBRARIES

    for name in models.available():
        source = models.registry.source_of(name)
        print(name if source["kind"] == "zoo" else f"{name}  ({source['kind']} {source.get('module', '')})".rstrip())
    for lib in LIBRARIES:
        try:
            print(f"{lib}:NAME  ({lib} {models.outside.version(lib)} installed: any of its classification models)")
        except models.ModelError as err:
            print(f"{lib}:NAME  (not available: {err})")
    print("package.module:function  (a function of yours returning a torch.nn.Module)")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

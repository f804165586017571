"""The ``ait`` command line.

    ait train CONFIG [--set KEY=VALUE ...] [--run-dir DIR] [--overwrite]
    ait demo [--data PATH] [--epochs N] [--out-dir DIR]
    ait models                      # the registered architectures
    ait config CONFIG [--set ...]   # print the resolved config without training

Errors in configs, data or run directories end the command with a one-line message and exit
status 2, not a traceback.
"""

from __future__ import annotations

import argparse
import sys

from ait.config import ConfigError


def _add_overrides(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. --set consistency.weight=3 (repeatable)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ait", description="Augmentation-invariant training of image classifiers.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train one run from a YAML config")
    p.add_argument("config", help="YAML config file (see configs/)")
    _add_overrides(p)
    p.add_argument("--run-dir", help="run directory (default: OUT_DIR/NAME/seedSEED from the config)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing run directory")

    p = sub.add_parser("config", help="print the resolved config (after --set) and exit")
    p.add_argument("config")
    _add_overrides(p)

    p = sub.add_parser("demo", help="train baseline and AIT side by side on a small offline dataset")
    p.add_argument("--data", default=None,
                   help="Fashion-MNIST IDX folder (default: /usr/share/datasets/fashion-mnist), or a folder "
                        "with train*.npz and test.npz such as ../shared/data/cifar10")
    p.add_argument("--epochs", type=int, default=None, help="epochs per run (default: the demo's own)")
    p.add_argument("--train-limit", type=int, default=None, help="training images used (default: the demo's own)")
    p.add_argument("--out-dir", default="runs", help="where the demo's run directories go (default: runs)")

    sub.add_parser("models", help="list the registered architectures")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from ait.data import DataError
    from ait.engine.rundir import RunDirError

    try:
        if args.command == "train":
            from ait.engine.run import train

            summary = train(args.config, args.overrides, run_dir=args.run_dir, overwrite=args.overwrite)
            print(summary["run_dir"])
        elif args.command == "config":
            from ait.config import dump_yaml, load_config

            print(dump_yaml(load_config(args.config, args.overrides)), end="")
        elif args.command == "demo":
            from ait.demo import run_demo

            run_demo(data=args.data, epochs=args.epochs, train_limit=args.train_limit, out_dir=args.out_dir)
        elif args.command == "models":
            from ait import models

            for name in models.available():
                print(name)
    except (ConfigError, DataError, RunDirError) as err:
        print(f"ait {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"ait {args.command}: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

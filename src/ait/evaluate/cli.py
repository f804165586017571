"""``ait eval``: accuracy, augmentation transfer, variation and t-SNE of finished runs.

    ait eval runs/cifar100_baseline/seed0 runs/cifar100_ait/seed0            # transfer + variation
    ait eval runs/cifar100_ait/seed0 --all --device cuda                    # + t-SNE
    ait eval RUN_DIR --tsne --seed 1 --cache-dir /tmp/ait-cache
    ait eval runs/cifar10_ait/seed0 --corruptions --baseline runs/cifar10_baseline/seed0   # CIFAR-10-C, mCE
    ait eval RUN_DIR --corruptions-dir data/CIFAR-10-C --corruption-names fog,snow --severities 3,5
    ait eval runs/imagenet_ait/seed0 --corruptions-dir data/ImageNet-C --reference-errors alexnet  # image folders
    ait eval --model timm:resnet18 --weights w.safetensors --out evals/r18 --set data.dataset=cifar10 \
        --set data.root=data/cifar-10-batches-py --all --corruptions   # a model ait did not train

Writes into each RUN_DIR/eval/ (formats in :mod:`ait.evaluate.pipeline`, which does the work from
typed options) and prints a short Markdown table per run (:mod:`ait.evaluate.markdown`).
"""

from __future__ import annotations

import argparse

from ait.cli_args import positive_int, seed_int
from ait.config import ConfigError, add_override_option
from ait.evaluate.corruption_eval import check_selection
from ait.evaluate.corruptions import CONSTANTS, CORRUPTIONS, SEVERITIES
from ait.evaluate.loading import check_run_dir
from ait.evaluate.markdown import accuracy_markdown, corruptions_markdown, transfer_markdown, variation_markdown
from ait.evaluate.outside import load_outside_model
from ait.evaluate.pipeline import CorruptionOptions, EvalOptions, evaluate_loaded, evaluate_runs


def _name_list(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    try:
        return check_selection(names, SEVERITIES)[0]
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _severity_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
        return check_selection(CORRUPTIONS, values)[1]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected distinct severities in 1..5 separated by commas, got {text!r}"
        ) from None


def add_eval_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``eval`` sub-command to an ``argparse`` sub-parser set; returns its parser."""
    p = subparsers.add_parser(
        "eval",
        help="evaluate finished runs: augmentation transfer, variation, t-SNE",
        description="Evaluate finished runs on fixed augmented test sets (paper sec. 4.4-4.5); "
        "results go to RUN_DIR/eval/. Default: --transfer --variation.",
    )
    p.add_argument("run_dirs", nargs="*", metavar="RUN_DIR", help="run directories written by `ait train`")
    _add_outside_model_arguments(p)
    p.add_argument("--transfer", action="store_true", help="accuracy on original/crop/gray/color test sets (Table 5)")
    p.add_argument(
        "--variation",
        action="store_true",
        help="symmetric KL of predictions and feature distance between test sets (Figure 5)",
    )
    p.add_argument("--tsne", action="store_true", help="t-SNE of features of augmented variants (Figure 6)")
    p.add_argument(
        "--all",
        action="store_true",
        help="all of the above (not --corruptions, which is slow: 75 test sets; ask for it on its own)",
    )
    _add_corruption_arguments(p)
    p.add_argument(
        "--seed", type=seed_int, default=0, help="seed of the fixed test sets and t-SNE samples (default: 0)"
    )
    p.add_argument(
        "--cache-dir",
        default=None,
        help="where generated test sets are cached (default: $AIT_CACHE_DIR/testsets, "
        "$XDG_CACHE_HOME/ait/testsets or ~/.cache/ait/testsets)",
    )
    p.add_argument("--batch-size", type=positive_int, default=None, help="evaluation batch size (default: the run's)")
    p.add_argument("--device", default="auto", help="auto (CUDA if available), cpu, cuda, cuda:1 ... (default: auto)")
    p.add_argument(
        "--allow-data-change",
        action="store_true",
        help="evaluate although the data's fingerprint differs from the one the checkpoint recorded",
    )
    p.add_argument(
        "--tsne-samples", type=positive_int, default=14, help="test images in the t-SNE (default: 14, as the paper)"
    )
    p.add_argument(
        "--tsne-variants", type=positive_int, default=16, help="variants per image in the t-SNE (default: 16)"
    )
    p.set_defaults(handler=run_eval)
    return p


def _add_outside_model_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--model",
        metavar="NAME",
        help="also evaluate a model ait did not train: a name as in strategy.networks "
        "(timm:NAME, torchvision:NAME, a zoo or registered name), with --weights and --out",
    )
    p.add_argument("--weights", metavar="FILE", help="with --model: its .safetensors / .pt state dict")
    p.add_argument("--out", metavar="DIR", help="with --model: where its results go (DIR/eval/, DIR/model.json)")
    add_override_option(
        p, "with --model: config keys of its test data (data.dataset, data.root, ...) and models.NAME.kwargs"
    )


def _add_corruption_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--corruptions",
        action="store_true",
        help="top-1 under the 15 common corruptions x 5 severities, generated locally from the run's "
        "test set (seeded; cached for in-memory data) unless --corruptions-dir; writes corruptions.json",
    )
    p.add_argument(
        "--corruptions-dir",
        metavar="DIR",
        default=None,
        help="read the official files from DIR instead: CIFAR-10-C / CIFAR-100-C .npy files, or for "
        "image-folder runs ImageNet-C's CORRUPTION/SEVERITY/CLASS/ images (implies --corruptions)",
    )
    p.add_argument(
        "--corruption-names",
        metavar="NAMES",
        type=_name_list,
        default=None,
        help=f"comma-separated subset of: {','.join(CORRUPTIONS)} (default: all; implies --corruptions)",
    )
    p.add_argument(
        "--severities",
        metavar="LIST",
        type=_severity_list,
        default=None,
        help="comma-separated severities in 1..5 (default: 1,2,3,4,5; implies --corruptions)",
    )
    p.add_argument(
        "--baseline",
        metavar="RUN_DIR",
        default=None,
        help="also report the mean corruption error (mCE, %%) against this run's network 0 (implies --corruptions)",
    )
    p.add_argument(
        "--corruption-constants",
        choices=sorted(CONSTANTS),
        default=None,
        help="severity constants of generated corruptions (default: imagenet for image-folder runs, "
        "cifar otherwise; implies --corruptions)",
    )
    p.add_argument(
        "--reference-errors",
        metavar="alexnet|FILE",
        default=None,
        help="also report mCE against published mean errors per corruption: 'alexnet' (ImageNet-C's "
        "normalisation) or a JSON file {corruption: error %%}; needs all five severities (implies --corruptions)",
    )


def _corruptions_selected(args) -> bool:
    """--corruptions, or any of the options that only make sense with it."""
    return any(
        getattr(args, key, None)
        for key in (
            "corruptions",
            "corruptions_dir",
            "corruption_names",
            "severities",
            "baseline",
            "corruption_constants",
            "reference_errors",
        )
    )


def _selected(args) -> tuple[bool, bool, bool]:
    if args.all:
        return True, True, True
    if not (args.transfer or args.variation or args.tsne):
        if _corruptions_selected(args):  # corruptions alone: accuracy.json plus corruptions.json
            return False, False, False
        return True, True, False
    return bool(args.transfer), bool(args.variation), bool(args.tsne)


def options_from_args(args: argparse.Namespace) -> EvalOptions:
    """The typed options of the parsed ``ait eval`` arguments."""
    transfer, variation, tsne = _selected(args)
    corruptions = None
    if _corruptions_selected(args):
        corruptions = CorruptionOptions(
            names=args.corruption_names or list(CORRUPTIONS),
            severities=args.severities or list(SEVERITIES),
            source=args.corruptions_dir,
            baseline=args.baseline,
            constants=args.corruption_constants,
            reference=args.reference_errors,
        )
    return EvalOptions(
        transfer=transfer,
        variation=variation,
        tsne=tsne,
        corruptions=corruptions,
        seed=args.seed,
        cache_dir=args.cache_dir,
        batch_size=args.batch_size,
        device=args.device,
        allow_data_change=args.allow_data_change,
        tsne_samples=args.tsne_samples,
        tsne_variants=args.tsne_variants,
    )


def _evaluations(args: argparse.Namespace, options: EvalOptions, lock_runs: bool):
    """The run directories' evaluations, then the --model's; every path checked before any work."""
    if args.model is None:
        if args.weights or args.out or args.overrides:
            raise ConfigError("--weights, --out and --set go with --model NAME (a model ait did not train)")
        if not args.run_dirs:
            raise ConfigError("ait eval needs RUN_DIR... or --model NAME --weights FILE --out DIR")
        yield from evaluate_runs(args.run_dirs, options, lock_runs)
        return
    if not (args.weights and args.out):
        raise ConfigError("--model NAME needs --weights FILE (its state dict) and --out DIR (where results go)")
    for path in args.run_dirs:
        check_run_dir(path)
    outside = load_outside_model(args.model, args.weights, args.out, args.overrides, options.device)
    yield from evaluate_runs(args.run_dirs, options, lock_runs)
    yield from evaluate_loaded([outside], options)


def eval_arguments(argv: list[str]) -> argparse.Namespace:
    """``ait eval ARGV`` parsed as the command line would be (for a sweep file's ``eval: args``);
    ValueError with argparse's message for arguments it refuses."""
    parser = add_eval_parser(argparse.ArgumentParser(prog="ait").add_subparsers(dest="command"))
    parser.exit_on_error = False  # an error is raised, not printed with the usage and exited
    try:
        args, unknown = parser.parse_known_args(argv)
    except argparse.ArgumentError as err:
        raise ValueError(str(err)) from None
    if unknown:
        raise ValueError(f"unrecognized arguments: {' '.join(unknown)}")
    return args


def run_eval(args: argparse.Namespace, lock_runs: bool = True) -> int:
    """``ait eval``: evaluate every RUN_DIR, print a Markdown summary per run as it is done.

    Raises RunLoadError (a RunDirError) naming the path for missing or damaged run directories,
    before any work (see :func:`ait.evaluate.pipeline.evaluate_runs`). lock_runs=False: the caller
    holds the run directories' locks already.
    """
    options = options_from_args(args)
    for run, results in _evaluations(args, options, lock_runs):
        print(f"## {run.name}: {run.run_dir}\n")
        if "transfer" in results:
            print(transfer_markdown(run, results["transfer"]) + "\n")
        else:
            print(accuracy_markdown(run, results["accuracy"]) + "\n")
        if "variation" in results:
            print(variation_markdown(results["variation"]) + "\n")
        if "corruptions" in results:
            print(corruptions_markdown(run, results["corruptions"]) + "\n")
        print(f"results: {run.run_dir / 'eval'}" + (" (tsne.png)" if "tsne" in results else "") + "\n")
    return 0

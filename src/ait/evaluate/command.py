"""``ait eval``: accuracy, augmentation transfer, variation and t-SNE of finished runs.

    ait eval runs/cifar100_baseline/seed0 runs/cifar100_ait/seed0            # transfer + variation
    ait eval runs/cifar100_ait/seed0 --all --device cuda                    # + t-SNE
    ait eval RUN_DIR --tsne --seed 1 --cache-dir /tmp/ait-cache
    ait eval runs/cifar10_ait/seed0 --corruptions --baseline runs/cifar10_baseline/seed0   # CIFAR-10-C, mCE
    ait eval RUN_DIR --corruptions-dir data/CIFAR-10-C --corruption-names fog,snow --severities 3,5

Writes into each RUN_DIR/eval/ (formats in the docstring of :func:`run_eval`) and prints a short
Markdown table per run.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ait.data.errors import DataError
from ait.evaluate.corruption_eval import check_selection, corruption_accuracy, corruption_summary
from ait.evaluate.corruptions import CORRUPTIONS, SEVERITIES
from ait.evaluate.loading import LoadedRun, RunLoadError, check_run_dir, load_run
from ait.evaluate.testsets import TEST_SETS, images_key
from ait.evaluate.transfer import predict_on_test_sets, transfer_from_outputs
from ait.evaluate.tsne import plot_tsne, tsne_features
from ait.evaluate.variation import PAIRS, pair_key, variation_from_outputs
from ait.runtime.files import write_json


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return value


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
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run directories written by `ait train`")
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
    p.add_argument(
        "--corruptions",
        action="store_true",
        help="top-1 under the 15 CIFAR-10-C common corruptions x 5 severities, generated locally from "
        "the run's test set (seeded, cached) unless --corruptions-dir; writes corruptions.json",
    )
    p.add_argument(
        "--corruptions-dir",
        metavar="DIR",
        default=None,
        help="read the official CIFAR-10-C / CIFAR-100-C .npy files from DIR instead (implies --corruptions)",
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
    p.add_argument("--seed", type=int, default=0, help="seed of the fixed test sets and t-SNE samples (default: 0)")
    p.add_argument(
        "--cache-dir",
        default=None,
        help="where generated test sets are cached (default: $AIT_CACHE_DIR/testsets or ~/.cache/ait/testsets)",
    )
    p.add_argument("--batch-size", type=_positive_int, default=None, help="evaluation batch size (default: the run's)")
    p.add_argument("--device", default="auto", help="auto (CUDA if available), cpu, cuda, cuda:1 ... (default: auto)")
    p.add_argument(
        "--tsne-samples", type=_positive_int, default=14, help="test images in the t-SNE (default: 14, as the paper)"
    )
    p.add_argument(
        "--tsne-variants", type=_positive_int, default=16, help="variants per image in the t-SNE (default: 16)"
    )
    return p


def _corruptions_selected(args) -> bool:
    """--corruptions, or any of the options that only make sense with it."""
    return any(
        getattr(args, key, None)
        for key in ("corruptions", "corruptions_dir", "corruption_names", "severities", "baseline")
    )


def _selected(args) -> tuple[bool, bool, bool]:
    if args.all:
        return True, True, True
    if not (args.transfer or args.variation or args.tsne):
        if _corruptions_selected(args):  # corruptions alone: accuracy.json plus corruptions.json
            return False, False, False
        return True, True, False
    return bool(args.transfer), bool(args.variation), bool(args.tsne)


def _eval_dir(run_dir: Path) -> Path:
    path = run_dir / "eval"
    try:
        path.mkdir(exist_ok=True)
    except OSError as err:
        raise RunLoadError(f"cannot write evaluation results to {str(path)!r}: {err.strerror or err}") from None
    return path


def _network_label(run: LoadedRun, key: str) -> str:
    if key == "ensemble":
        return "ensemble"
    return f"{key} ({run.config.strategy.networks[int(key[3:])]})"


def transfer_markdown(run: LoadedRun, transfer: dict[str, Any]) -> str:
    sets = transfer["test_sets"]
    lines = [
        f"top-1 / top-5 (%) on fixed test sets (seed {transfer['seed']})",
        "",
        "| network | " + " | ".join(sets) + " |",
        "|---|" + "---:|" * len(sets),
    ]
    for key, row in transfer["networks"].items():
        cells = [f"{row[s]['top1']:.2f} / {row[s]['top5']:.2f}" for s in sets]
        lines.append(f"| {_network_label(run, key)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def variation_markdown(variation: dict[str, Any]) -> str:
    nets = list(variation["networks"])
    header = "| pair | " + " | ".join(f"{k} KL | {k} feature L2" for k in nets) + " |"
    lines = [
        "variation between test sets: mean symmetric KL of predictions, mean L2 distance of pooled features",
        "",
        header,
        "|---|" + "---:|---:|" * len(nets),
    ]
    for pair in variation["pairs"]:
        cells = [
            f"{variation['networks'][k][pair]['kl']:.4f} | {variation['networks'][k][pair]['feature_l2']:.4f}"
            for k in nets
        ]
        lines.append(f"| {pair} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def corruptions_markdown(run: LoadedRun, summary: dict[str, Any]) -> str:
    """Mean top-1 over the severities per corruption (rows) and network (columns), then the means and mCE."""
    nets = list(summary["networks"])
    source = "local generation" if summary["source"] == "local" else f"official files in {summary['source']}"
    sev = ",".join(str(s) for s in summary["severities"])
    lines = [
        f"top-1 (%) under common corruptions, mean over severities {sev} ({source}, seed {summary['seed']})",
        "",
        "| corruption | " + " | ".join(_network_label(run, k) for k in nets) + " |",
        "|---|" + "---:|" * len(nets),
    ]
    for name in summary["corruptions"]:
        cells = []
        for k in nets:
            values = list(summary["networks"][k][name].values())
            cells.append(f"{sum(values) / len(values):.2f}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines.append("| mean | " + " | ".join(f"{summary['mean_top1'][k]:.2f}" for k in nets) + " |")
    if summary["mce"] is not None:
        lines.append(
            f"| mCE (%) vs {summary['baseline']} | " + " | ".join(f"{summary['mce'][k]:.2f}" for k in nets) + " |"
        )
    return "\n".join(lines)


def _test_set_identity(run: LoadedRun, official: bool) -> tuple:
    """What must agree between a run and its mCE baseline: classes, image shape and (for local
    generation, where each run corrupts its own test set) the test images and labels themselves."""
    test = run.data.test
    if official:
        return test.num_classes, tuple(test.image_shape)
    return test.num_classes, tuple(test.images.shape), images_key(test.labels, images_key(test.images, "test"))


def evaluate_corruptions(
    run: LoadedRun, args: argparse.Namespace, memo: dict[Path, tuple[dict[str, Any], tuple]]
) -> dict[str, Any]:
    """Compute and write RUN_DIR/eval/corruptions.json; returns its content.

    ``memo`` keeps (accuracies, test set identity) per run directory, so that a baseline that is
    also one of the evaluated runs (or the baseline of several runs) is evaluated once.
    """
    corruptions = args.corruption_names or list(CORRUPTIONS)
    severities = args.severities or list(SEVERITIES)
    official = args.corruptions_dir is not None

    def evaluated(loaded: LoadedRun) -> tuple[dict[str, Any], tuple]:
        key = loaded.run_dir.resolve()
        if key not in memo:
            memo[key] = (
                corruption_accuracy(
                    loaded, corruptions, severities, args.seed, args.corruptions_dir, args.cache_dir, args.batch_size
                ),
                _test_set_identity(loaded, official),
            )
        return memo[key]

    accuracy, identity = evaluated(run)
    baseline, base_dir = None, None
    if args.baseline is not None:
        base_dir = check_run_dir(args.baseline)
        hit = memo.get(base_dir.resolve())
        baseline, base_identity = hit if hit is not None else evaluated(load_run(base_dir, device=args.device))
        if base_identity != identity:
            raise RunLoadError(
                f"baseline run directory {str(base_dir)!r} was evaluated on a different test set "
                f"(classes, image shape{'' if official else ', images'}) than {str(run.run_dir)!r}; "
                "mCE needs the same one"
            )
    try:
        summary = corruption_summary(
            accuracy, args.seed, args.corruptions_dir, corruptions, severities, baseline, base_dir
        )
    except ValueError as err:  # e.g. a baseline without errors on a corruption: keep the accuracies anyway
        print(f"warning: no mCE for {run.run_dir}: {err}", file=sys.stderr)
        summary = corruption_summary(accuracy, args.seed, args.corruptions_dir, corruptions, severities, None, base_dir)
    write_json(_eval_dir(run.run_dir) / "corruptions.json", summary)
    return summary


def evaluate_run(
    run: LoadedRun,
    transfer: bool = True,
    variation: bool = True,
    tsne: bool = False,
    seed: int = 0,
    cache_dir: str | Path | None = None,
    batch_size: int | None = None,
    tsne_samples: int = 14,
    tsne_variants: int = 16,
) -> dict[str, Any]:
    """Compute and write RUN_DIR/eval/*.json (and tsne.png); returns {file stem: JSON data}."""
    out_dir = _eval_dir(run.run_dir)
    wanted = ["original"]
    if transfer or variation:
        wanted = list(TEST_SETS)
    outputs = predict_on_test_sets(run, wanted, seed, cache_dir, batch_size)  # one forward pass per set
    labels = run.data.test.labels
    results: dict[str, Any] = {}

    acc = transfer_from_outputs({"original": outputs["original"]}, labels)
    results["accuracy"] = {
        "test_set": "original",
        "num_samples": int(labels.numel()),
        "networks": {k: v["original"] for k, v in acc.items()},
    }
    if transfer:
        results["transfer"] = {
            "seed": seed,
            "test_sets": list(outputs),
            "networks": transfer_from_outputs(outputs, labels),
        }
    if variation:
        pairs = [(a, b) for a, b in PAIRS if a in outputs and b in outputs]
        results["variation"] = {
            "seed": seed,
            "pairs": [pair_key(a, b) for a, b in pairs],
            "networks": variation_from_outputs(outputs, pairs),
        }
    if tsne:
        samples = min(tsne_samples, len(run.data.test))
        res = tsne_features(run, samples, tsne_variants, seed, batch_size=batch_size)
        results["tsne"] = res.to_json()
        label = f"{run.name} ({run.config.strategy.name}, {run.config.strategy.networks[0]})"
        plot_tsne({label: res}, out_dir / "tsne.png", class_names=run.data.test.classes)
    for stem, data in results.items():
        write_json(out_dir / f"{stem}.json", data)
    return results


def run_eval(args: argparse.Namespace) -> int:
    """Evaluate every RUN_DIR; write RUN_DIR/eval/ files; print a Markdown summary per run.

    File formats::

        accuracy.json   {"test_set": "original", "num_samples": int,
                         "networks": {"net0": {"top1": f, "top5": f}, ..., "ensemble": {...}}}
        transfer.json   {"seed": int, "test_sets": [names],
                         "networks": {"net0": {"original": {"top1": f, "top5": f}, "crop": {...}, ...},
                                      "ensemble": {...} (only with > 1 network)}}
        variation.json  {"seed": int, "pairs": ["original,crop", ...],
                         "networks": {"net0": {"original,crop": {"kl": f, "feature_l2": f}, ...}}}
        tsne.json       {"seed": int, "num_samples": int, "num_variants": int, "points": [[x, y], ...],
                         "sample": [test index, ...], "variant": [...], "label": [...]}
        corruptions.json  (only with --corruptions or its options; not part of --all)
                        {"seed": int, "source": "local" | "<dir of the official .npy files>",
                         "severities": [int, ...], "corruptions": [names],
                         "networks": {"net0": {"<corruption>": {"<severity>": top1}, ...}, ..., "ensemble": ...},
                         "mean_top1": {"net0": f, ...}, "mce": {"net0": f, ...} or null,
                         "baseline": "<baseline run dir>" or null}

    Percentages in [0, 100]. For 1-channel data the "gray" set and its pairs are left out.
    Raises RunLoadError (a RunDirError) naming the path for missing or damaged run directories.
    """
    do_transfer, do_variation, do_tsne = _selected(args)
    do_corruptions = _corruptions_selected(args)
    run_dirs = [check_run_dir(d) for d in args.run_dirs]  # fail before any work on a bad path
    if do_corruptions:
        if getattr(args, "baseline", None) is not None:
            check_run_dir(args.baseline)
        if getattr(args, "corruptions_dir", None) is not None and not Path(args.corruptions_dir).expanduser().is_dir():
            raise DataError(
                f"{args.corruptions_dir!r}: not a directory; --corruptions-dir expects the CIFAR-10-C / "
                "CIFAR-100-C folder with <corruption>.npy and labels.npy"
            )
        for key in ("corruptions_dir", "corruption_names", "severities", "baseline"):
            if not hasattr(args, key):
                setattr(args, key, None)
    memo: dict[Path, dict[str, Any]] = {}
    for run_dir in run_dirs:
        run = load_run(run_dir, device=args.device)
        results = evaluate_run(
            run,
            do_transfer,
            do_variation,
            do_tsne,
            args.seed,
            args.cache_dir,
            args.batch_size,
            args.tsne_samples,
            args.tsne_variants,
        )
        print(f"## {run.name}: {run_dir}\n")
        if "transfer" in results:
            print(transfer_markdown(run, results["transfer"]) + "\n")
        else:
            acc = results["accuracy"]["networks"]
            print("| network | top-1 (%) | top-5 (%) |\n|---|---:|---:|")
            for key, row in acc.items():
                print(f"| {_network_label(run, key)} | {row['top1']:.2f} | {row['top5']:.2f} |")
            print()
        if "variation" in results:
            print(variation_markdown(results["variation"]) + "\n")
        if do_corruptions:
            print(corruptions_markdown(run, evaluate_corruptions(run, args, memo)) + "\n")
        print(f"results: {run_dir / 'eval'}" + (" (tsne.png)" if "tsne" in results else "") + "\n")
    return 0

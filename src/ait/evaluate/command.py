"""``ait eval``: accuracy, augmentation transfer, variation and t-SNE of finished runs.

    ait eval runs/cifar100_baseline/seed0 runs/cifar100_ait/seed0            # transfer + variation
    ait eval runs/cifar100_ait/seed0 --all --device cuda                    # + t-SNE
    ait eval RUN_DIR --tsne --seed 1 --cache-dir /tmp/ait-cache

Writes into each RUN_DIR/eval/ (formats in the docstring of :func:`run_eval`) and prints a short
Markdown table per run.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ait.engine.rundir import write_json
from ait.evaluate.loading import LoadedRun, RunLoadError, check_run_dir, load_run
from ait.evaluate.testsets import TEST_SETS
from ait.evaluate.transfer import predict_on_test_sets, transfer_from_outputs
from ait.evaluate.tsne import plot_tsne, tsne_features
from ait.evaluate.variation import PAIRS, pair_key, variation_from_outputs


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return value


def add_eval_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``eval`` sub-command to an ``argparse`` sub-parser set; returns its parser."""
    p = subparsers.add_parser("eval", help="evaluate finished runs: augmentation transfer, variation, t-SNE",
                              description="Evaluate finished runs on fixed augmented test sets (paper sec. 4.4-4.5); "
                                          "results go to RUN_DIR/eval/. Default: --transfer --variation.")
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run directories written by `ait train`")
    p.add_argument("--transfer", action="store_true", help="accuracy on original/crop/gray/color test sets (Table 5)")
    p.add_argument("--variation", action="store_true",
                   help="symmetric KL of predictions and feature distance between test sets (Figure 5)")
    p.add_argument("--tsne", action="store_true", help="t-SNE of features of augmented variants (Figure 6)")
    p.add_argument("--all", action="store_true", help="all of the above")
    p.add_argument("--seed", type=int, default=0, help="seed of the fixed test sets and t-SNE samples (default: 0)")
    p.add_argument("--cache-dir", default=None,
                   help="where generated test sets are cached (default: $AIT_CACHE_DIR/testsets or ~/.cache/ait/testsets)")
    p.add_argument("--batch-size", type=_positive_int, default=None, help="evaluation batch size (default: the run's)")
    p.add_argument("--device", default="auto", help="auto (CUDA if available), cpu, cuda, cuda:1 ... (default: auto)")
    p.add_argument("--tsne-samples", type=_positive_int, default=14, help="test images in the t-SNE (default: 14, as the paper)")
    p.add_argument("--tsne-variants", type=_positive_int, default=16, help="variants per image in the t-SNE (default: 16)")
    return p


def _selected(args) -> tuple[bool, bool, bool]:
    if args.all:
        return True, True, True
    if not (args.transfer or args.variation or args.tsne):
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
    lines = [f"top-1 / top-5 (%) on fixed test sets (seed {transfer['seed']})", "",
             "| network | " + " | ".join(sets) + " |", "|---|" + "---:|" * len(sets)]
    for key, row in transfer["networks"].items():
        cells = [f"{row[s]['top1']:.2f} / {row[s]['top5']:.2f}" for s in sets]
        lines.append(f"| {_network_label(run, key)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def variation_markdown(variation: dict[str, Any]) -> str:
    nets = list(variation["networks"])
    header = "| pair | " + " | ".join(f"{k} KL | {k} feature L2" for k in nets) + " |"
    lines = ["variation between test sets: mean symmetric KL of predictions, mean L2 distance of pooled features",
             "", header, "|---|" + "---:|---:|" * len(nets)]
    for pair in variation["pairs"]:
        cells = [f"{variation['networks'][k][pair]['kl']:.4f} | {variation['networks'][k][pair]['feature_l2']:.4f}"
                 for k in nets]
        lines.append(f"| {pair} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def evaluate_run(run: LoadedRun, transfer: bool = True, variation: bool = True, tsne: bool = False, seed: int = 0,
                 cache_dir: str | Path | None = None, batch_size: int | None = None, tsne_samples: int = 14,
                 tsne_variants: int = 16) -> dict[str, Any]:
    """Compute and write RUN_DIR/eval/*.json (and tsne.png); returns {file stem: JSON data}."""
    out_dir = _eval_dir(run.run_dir)
    wanted = ["original"]
    if transfer or variation:
        wanted = list(TEST_SETS)
    outputs = predict_on_test_sets(run, wanted, seed, cache_dir, batch_size)  # one forward pass per set
    labels = run.data.test.labels
    results: dict[str, Any] = {}

    acc = transfer_from_outputs({"original": outputs["original"]}, labels)
    results["accuracy"] = {"test_set": "original", "num_samples": int(labels.numel()),
                           "networks": {k: v["original"] for k, v in acc.items()}}
    if transfer:
        results["transfer"] = {"seed": seed, "test_sets": list(outputs),
                               "networks": transfer_from_outputs(outputs, labels)}
    if variation:
        pairs = [(a, b) for a, b in PAIRS if a in outputs and b in outputs]
        results["variation"] = {"seed": seed, "pairs": [pair_key(a, b) for a, b in pairs],
                                "networks": variation_from_outputs(outputs, pairs)}
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

    Percentages in [0, 100]. For 1-channel data the "gray" set and its pairs are left out.
    Raises RunLoadError (a RunDirError) naming the path for missing or damaged run directories.
    """
    do_transfer, do_variation, do_tsne = _selected(args)
    run_dirs = [check_run_dir(d) for d in args.run_dirs]  # fail before any work on a bad path
    for run_dir in run_dirs:
        run = load_run(run_dir, device=args.device)
        results = evaluate_run(run, do_transfer, do_variation, do_tsne, args.seed, args.cache_dir, args.batch_size,
                               args.tsne_samples, args.tsne_variants)
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
        print(f"results: {run_dir / 'eval'}" + (" (tsne.png)" if "tsne" in results else "") + "\n")
    return 0

"""What ``ait eval`` does to each run: which evaluations, with which options, written where.

    >>> from ait.evaluate.pipeline import CorruptionOptions, EvalOptions, evaluate_runs
    >>> options = EvalOptions(device="cpu", corruptions=CorruptionOptions(names=["fog"], severities=[3]))
    >>> for run, results in evaluate_runs(["runs/smoke_synthetic_resnet20_ait/seed0"], options):
    ...     print(sorted(results), 0 <= results["transfer"]["networks"]["net0"]["gray"]["top1"] <= 100)
    ['accuracy', 'corruptions', 'transfer', 'variation'] True

Each run's results go to RUN_DIR/eval/ as JSON, one file per evaluation::

    accuracy.json   {"test_set": "original", "num_samples": int,
                     "networks": {"net0": {"top1": f, "top5": f}, ..., "ensemble": {...}}}
    transfer.json   {"seed": int, "test_sets": [names],
                     "networks": {"net0": {"original": {"top1": f, "top5": f}, "crop": {...}, ...},
                                  "ensemble": {...} (only with > 1 network)}}
    variation.json  {"seed": int, "pairs": ["original,crop", ...],
                     "networks": {"net0": {"original,crop": {"kl": f, "feature_l2": f}, ...}}}
    tsne.json       {"seed": int, "num_samples": int, "num_variants": int, "points": [[x, y], ...],
                     "sample": [test index, ...], "variant": [...], "label": [...]}  (and tsne.png)
    corruptions.json  (only with CorruptionOptions)
                    {"seed": int, "source": "local" | "<dir of the official .npy files>",
                     "severities": [int, ...], "corruptions": [names],
                     "networks": {"net0": {"<corruption>": {"<severity>": top1}, ...}, ..., "ensemble": ...},
                     "mean_top1": {"net0": f, ...}, "mce": {"net0": f, ...} or null,
                     "baseline": "<baseline run dir>" or null,
                     "constants": "cifar" | "imagenet" | "official",
                     "mce_reference": {"name": "alexnet" | "<file stem>", "mce": {"net0": f, ...}} or null}

Image-folder runs (``data.dataset: imagefolder``) are evaluated the same way, their test set
streamed from ``val/`` and every derived set made image by image (:mod:`ait.evaluate.folders`);
t-SNE is for in-memory data only (left out with a warning).

Percentages in [0, 100]. For 1-channel data the "gray" set and its pairs are left out.
"""

from __future__ import annotations

import contextlib
import functools
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ait.config import ConfigError
from ait.data.errors import DataError
from ait.engine.lock import RunLock
from ait.evaluate.corruption_eval import (
    check_reference,
    check_selection,
    corruption_accuracy,
    corruption_summary,
    default_constants,
    reference_errors,
)
from ait.evaluate.corruptions import CORRUPTIONS, SEVERITIES, check_constants
from ait.evaluate.folders import FolderTestSet
from ait.evaluate.loading import LoadedRun, RunLoadError, check_run_dir, load_run
from ait.evaluate.testsets import TEST_SETS, images_key
from ait.evaluate.transfer import predict_on_test_sets, transfer_from_outputs
from ait.evaluate.tsne import plot_tsne, tsne_features
from ait.evaluate.variation import PAIRS, pair_key, variation_from_outputs
from ait.runtime.files import write_json


@dataclass
class CorruptionOptions:
    """Accuracy under common corruptions. source: None generates them from the run's test set;
    a folder reads the official CIFAR-10-C / CIFAR-100-C ``.npy`` files (image-folder runs:
    ImageNet-C's ``CORRUPTION/SEVERITY/CLASS/`` images). baseline: a run directory
    whose network 0 the mCE is taken against (None: no mCE). constants: of generated sets, "cifar"
    or "imagenet" (None: ImageNet-C's for image-folder runs, CIFAR-10-C's for arrays). reference:
    "alexnet" or a JSON file of mean errors per corruption, for an mCE against published errors."""

    names: list[str] = field(default_factory=lambda: list(CORRUPTIONS))
    severities: list[int] = field(default_factory=lambda: list(SEVERITIES))
    source: str | None = None
    baseline: str | None = None
    constants: str | None = None
    reference: str | None = None

    def __post_init__(self) -> None:
        self.names, self.severities = check_selection(self.names, self.severities)
        if self.constants is not None:
            check_constants(self.constants)
            if self.source is not None:  # the official files carry their own constants
                raise ConfigError("--corruption-constants applies to generated corruptions, not to --corruptions-dir")


@dataclass
class EvalOptions:
    """Which evaluations run, and how. The accuracy on the test set is always written."""

    transfer: bool = True  # accuracy on the fixed augmented test sets (Table 5)
    variation: bool = True  # KL and feature distance between them (Figure 5)
    tsne: bool = False  # t-SNE of the features of augmented variants (Figure 6)
    corruptions: CorruptionOptions | None = None
    seed: int = 0  # of the fixed test sets, the t-SNE samples and the generated corruptions
    cache_dir: str | None = None  # generated test sets (default: $AIT_CACHE_DIR/testsets or ~/.cache/ait/testsets)
    batch_size: int | None = None  # default: each run's train.eval_batch_size
    device: str = "auto"
    allow_data_change: bool = False  # evaluate although the data differs from what the checkpoint was trained on
    tsne_samples: int = 14
    tsne_variants: int = 16


def evaluate_runs(
    run_dirs: Sequence[str | Path], options: EvalOptions, lock_runs: bool = True
) -> Iterator[tuple[LoadedRun, dict[str, Any]]]:
    """Evaluate every run directory, yielding (run, {file stem: JSON data}) as each is done.

    Every directory (and the corruption baseline and source folder) is checked before any work,
    so a bad path fails at once; raises RunLoadError (a RunDirError) or DataError naming it. Each
    run is evaluated holding its directory's lock (RunLocked while another process trains or
    evaluates it); lock_runs=False for a caller that holds them already.
    """
    paths = [check_run_dir(d) for d in run_dirs]
    check_corruption_paths(options)
    # Closed however the evaluation ends: a failed run's lock is let go with its error, not when the
    # traceback that keeps this frame alive (a notebook's last one) is dropped.
    with contextlib.closing(_loaded_runs(paths, options, lock_runs)) as runs:
        yield from evaluate_loaded(runs, options)


def _loaded_runs(paths: list[Path], options: EvalOptions, lock_runs: bool) -> Iterator[LoadedRun]:
    """Each run, loaded once its lock is held; the lock is let go when the next run is asked for,
    so a run's results are written under it."""
    for path in paths:
        with _holding(path) if lock_runs else contextlib.nullcontext():
            yield load_run(path, device=options.device, allow_data_change=options.allow_data_change)


@contextlib.contextmanager
def _holding(run_dir: Path) -> Iterator[None]:
    """The run directory's lock, for an evaluation (RunLocked names another holder)."""
    try:
        held = RunLock(run_dir, purpose="evaluation").acquire()
    except OSError as err:  # read-only, not ours, a full disk: the lock file cannot be made
        raise RunLoadError(f"cannot evaluate {str(run_dir)!r}: it is not writable ({err.strerror or err})") from None
    try:
        yield
    finally:
        held.release()


def check_corruption_paths(options: EvalOptions) -> None:
    """The mCE baseline run and the official corruption folder, when given, exist."""
    corruptions = options.corruptions
    if corruptions is None:
        return
    if corruptions.baseline is not None:
        check_run_dir(corruptions.baseline)
    if corruptions.source is not None and not Path(corruptions.source).expanduser().is_dir():
        raise DataError(
            f"{corruptions.source!r}: not a directory; --corruptions-dir expects the CIFAR-10-C / "
            "CIFAR-100-C folder with <corruption>.npy and labels.npy, or for image-folder runs the "
            "ImageNet-C folder CORRUPTION/SEVERITY/CLASS/<images>"
        )
    if corruptions.reference is not None:  # a bad file or selection fails before any work
        check_reference(corruptions.reference, corruptions.names, corruptions.severities)


def evaluate_loaded(runs: Iterable[LoadedRun], options: EvalOptions) -> Iterator[tuple[LoadedRun, dict[str, Any]]]:
    """Evaluate loaded runs (of run directories, or models ait did not train: :mod:`ait.evaluate.outside`)."""
    memo: dict[Path, tuple[dict[str, Any], tuple]] = {}
    for run in runs:
        results = evaluate_run(
            run,
            options.transfer,
            options.variation,
            options.tsne,
            options.seed,
            options.cache_dir,
            options.batch_size,
            options.tsne_samples,
            options.tsne_variants,
        )
        if options.corruptions is not None:
            results["corruptions"] = evaluate_corruptions(run, options.corruptions, options, memo)
        yield run, results


def eval_dir(run_dir: Path) -> Path:
    """RUN_DIR/eval, created; RunLoadError naming it when it cannot be."""
    path = run_dir / "eval"
    try:
        path.mkdir(exist_ok=True)
    except OSError as err:
        raise RunLoadError(f"cannot write evaluation results to {str(path)!r}: {err.strerror or err}") from None
    return path


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
    if tsne and isinstance(run.data.test, FolderTestSet):  # --all over runs of both kinds: say so, go on
        warnings.warn(f"{run.run_dir}: no t-SNE, which is for in-memory test sets only", RuntimeWarning, stacklevel=2)
        tsne = False
    out_dir = eval_dir(run.run_dir)
    wanted = list(TEST_SETS) if transfer or variation else ["original"]
    outputs = predict_on_test_sets(run, wanted, seed, cache_dir, batch_size)  # one forward pass per set
    labels = run.data.test.labels
    acc = transfer_from_outputs({"original": outputs["original"]}, labels)
    results: dict[str, Any] = {
        "accuracy": {
            "test_set": "original",
            "num_samples": int(labels.numel()),
            "networks": {k: v["original"] for k, v in acc.items()},
        }
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
        res = tsne_features(run, min(tsne_samples, len(run.data.test)), tsne_variants, seed, batch_size=batch_size)
        results["tsne"] = res.to_json()
        label = f"{run.name} ({run.config.strategy.name}, {run.config.strategy.networks[0]})"
        plot_tsne({label: res}, out_dir / "tsne.png", class_names=run.data.test.classes)
    for stem, data in results.items():
        write_json(out_dir / f"{stem}.json", data)
    return results


def _baseline_accuracy(
    base_dir: Path, run: LoadedRun, identity: tuple, official: bool, options: EvalOptions, memo: dict, evaluated
) -> dict[str, Any]:
    """The mCE baseline's corruption accuracies (from ``memo`` when already evaluated); RunLoadError
    when it was evaluated on another test set than ``run`` (``identity``)."""
    hit = memo.get(base_dir.resolve())
    if hit is None:
        hit = evaluated(load_run(base_dir, device=options.device, allow_data_change=options.allow_data_change))
    baseline, base_identity = hit
    if base_identity != identity:
        raise RunLoadError(
            f"baseline run directory {str(base_dir)!r} was evaluated on a different test set "
            f"(classes, image shape{'' if official else ', images'}) than {str(run.run_dir)!r}; "
            "mCE needs the same one"
        )
    return baseline


def _test_set_identity(run: LoadedRun, official: bool) -> tuple:
    """What must agree between a run and its mCE baseline: classes, image shape and (for local
    generation, where each run corrupts its own test set) the test images and labels themselves."""
    test = run.data.test
    if official:
        return test.num_classes, tuple(test.image_shape)
    if isinstance(test, FolderTestSet):  # the files (paths, labels, sizes, times) stand for the pixels
        return test.num_classes, tuple(test.image_shape), len(test), test.fingerprint
    return test.num_classes, tuple(test.images.shape), images_key(test.labels, images_key(test.images, "test"))


def evaluate_corruptions(
    run: LoadedRun, corruptions: CorruptionOptions, options: EvalOptions, memo: dict[Path, tuple[dict[str, Any], tuple]]
) -> dict[str, Any]:
    """Compute and write RUN_DIR/eval/corruptions.json; returns its content.

    ``memo`` keeps (accuracies, test set identity) per run directory, so that a baseline that is
    also one of the evaluated runs (or the baseline of several runs) is evaluated once.
    """
    names, severities, source = corruptions.names, corruptions.severities, corruptions.source
    official = source is not None
    constants = corruptions.constants or default_constants(run.data.test)
    reference = reference_errors(corruptions.reference) if corruptions.reference else None
    if reference is not None and constants == "cifar" and not official:
        warnings.warn(
            f"{run.run_dir}: {reference[0]}'s errors were measured on ImageNet-C; against sets made "
            "with CIFAR-10-C's constants that mCE compares different corruptions",
            RuntimeWarning,
            stacklevel=2,
        )

    def evaluated(loaded: LoadedRun) -> tuple[dict[str, Any], tuple]:
        key = loaded.run_dir.resolve()
        if key not in memo:
            accuracy = corruption_accuracy(
                loaded, names, severities, options.seed, source, options.cache_dir, options.batch_size, constants
            )
            memo[key] = (accuracy, _test_set_identity(loaded, official))
        return memo[key]

    accuracy, identity = evaluated(run)
    baseline, base_dir = None, None
    if corruptions.baseline is not None:
        base_dir = check_run_dir(corruptions.baseline)
        baseline = _baseline_accuracy(base_dir, run, identity, official, options, memo, evaluated)
    summarise = functools.partial(corruption_summary, accuracy, options.seed, source, names, severities)
    try:
        summary = summarise(baseline, base_dir, constants, reference)
    except ValueError as err:  # a baseline without errors on a corruption: keep the rest anyway
        warnings.warn(f"no mCE against the baseline for {run.run_dir}: {err}", RuntimeWarning, stacklevel=2)
        summary = summarise(None, base_dir, constants, reference)
    write_json(eval_dir(run.run_dir) / "corruptions.json", summary)
    return summary

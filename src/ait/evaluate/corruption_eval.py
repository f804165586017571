"""Accuracy under common corruptions (CIFAR-10-C / CIFAR-100-C) and the mean corruption error (mCE).

    >>> from ait.evaluate import load_run
    >>> from ait.evaluate.corruption_eval import (corruption_accuracy, corruption_errors, mean_corruption_accuracy,
    ...                                           mean_corruption_error)
    >>> run = load_run("runs/smoke_synthetic_resnet20_ait/seed0", device="cpu")
    >>> base = load_run("runs/smoke_synthetic_resnet20_baseline/seed0", device="cpu")
    >>> acc = corruption_accuracy(run, ["fog", "snow"], [1, 3])  # generated locally (default: all 15 x 5)
    >>> official = corruption_accuracy(run, ["fog"], [3], source="data/CIFAR-10-C")  # the official .npy files
    >>> 0 <= acc["net0"]["fog"]["3"] <= 100  # top-1 (%) of network 0, fog, severity 3
    True
    >>> mean = mean_corruption_accuracy(acc["net0"])  # over corruptions and severities
    >>> errors = corruption_errors(corruption_accuracy(base, ["fog", "snow"], [1, 3])["net0"])
    >>> mce = mean_corruption_error(corruption_errors(acc["net0"]), errors)["mce"]  # %, 100 = as robust as base
    >>> 0 <= mean <= 100 and mce > 0 and tuple(official["net0"]["fog"]) == ("3",)
    True

mCE follows Hendrycks & Dietterich (2019): for each corruption c, the corruption error
CE_c = 100 * sum_s E(c, s) / sum_s E_baseline(c, s) over the severities s, with top-1 errors E
in percent; mCE is the mean of CE_c over the corruptions, in percent (100 = as robust as the
baseline, lower is better). The unnormalised mean error is the plain mean of E over corruptions
and severities (= 100 - mean corruption accuracy). The paper normalises by AlexNet on ImageNet-C;
on CIFAR there is no standard reference network, so the baseline is a run of your choice
(typically the plain "baseline" strategy of the same model). ImageNet-style runs can also be
normalised by AlexNet's published ImageNet-C errors (:func:`reference_errors`, "alexnet"): meaningful
on the official ImageNet-C files or on sets generated with ImageNet-C's constants.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from ait.config import ConfigError
from ait.data.errors import DataError
from ait.evaluate.corruptions import ALEXNET_ERRORS, CORRUPTIONS, SEVERITIES, corrupted_test_set, load_cifar_c
from ait.evaluate.folders import CorruptionTransform, FolderTestSet, official_corruption_set
from ait.evaluate.loading import LoadedRun
from ait.runtime.predict import accuracy_table, predict_batches, predict_logits

# network key ("net0", ..., "ensemble") -> corruption -> severity ("1".."5") -> top-1 (%)
Accuracies = dict[str, dict[str, float]]


def check_selection(corruptions: Iterable[str], severities: Iterable[int]) -> tuple[list[str], list[int]]:
    """The corruptions and severities as lists, after checking them (ValueError lists the valid values)."""
    corruptions, severities = list(corruptions), list(severities)
    unknown = [c for c in corruptions if c not in CORRUPTIONS]
    if unknown or not corruptions:
        raise ValueError(
            f"unknown corruption(s) {unknown}; valid names: {', '.join(CORRUPTIONS)}"
            if unknown
            else "no corruption selected"
        )
    bad = [s for s in severities if isinstance(s, bool) or not isinstance(s, int) or s not in SEVERITIES]
    if bad or not severities:
        raise ValueError(f"severities must be integers in 1..5, got {bad or severities}")
    if len(set(corruptions)) != len(corruptions) or len(set(severities)) != len(severities):
        raise ValueError(f"repeated corruption or severity in {corruptions} / {severities}")
    return corruptions, severities


def _official_set(run: LoadedRun, folder: str | Path, name: str, severity: int):
    images, labels = load_cifar_c(folder, name, severity)
    path = Path(folder).expanduser() / f"{name}.npy"
    shape = tuple(run.data.test.image_shape)
    if tuple(images.shape[1:]) != shape:
        raise DataError(
            f"{str(path)!r}: holds images of shape {tuple(images.shape[1:])} (C, H, W) but the run's "
            f"networks take {shape}"
        )
    num_classes = run.data.test.num_classes
    if labels.numel() and int(labels.max()) >= num_classes:
        raise DataError(
            f"{str(path.with_name('labels.npy'))!r}: labels go up to {int(labels.max())} but the run has "
            f"{num_classes} classes (CIFAR-100-C files for a CIFAR-10 run?)"
        )
    return images, labels


def corruption_accuracy(
    run: LoadedRun,
    corruptions: Sequence[str] = CORRUPTIONS,
    severities: Sequence[int] = SEVERITIES,
    seed: int = 0,
    source: str | Path | None = None,
    cache_dir: str | Path | None = None,
    batch_size: int | None = None,
    constants: str | None = None,
) -> dict[str, Accuracies]:
    """Top-1 (%) of every network, and of their ensemble, on each corruption and severity.

    source: None generates the corrupted sets from the run's own test set (seeded, cached like the
    fixed test sets; see :mod:`ait.evaluate.corruptions`; image-folder runs: made image by image
    while streaming, :mod:`ait.evaluate.folders`); a folder reads the official files with their own
    labels: CIFAR-10-C / CIFAR-100-C ``.npy`` files, or for image-folder runs ImageNet-C's
    ``CORRUPTION/SEVERITY/CLASS/*`` images (the run's test set is then not used). constants: the
    severity constants of generated sets, "cifar" or "imagenet" (None: "imagenet" for image-folder
    runs, else "cifar"). Returns {"net0": {corruption: {"1": top1, ...}, ...}, ..., "ensemble":
    {...} (more than one network)}, severities as strings (JSON keys), in the order given.
    """
    corruptions, severities = check_selection(corruptions, severities)
    test = run.data.test
    constants = constants or default_constants(test)
    batch = batch_size or run.eval_batch_size
    result: dict[str, Accuracies] = {}
    for name in corruptions:
        for severity in severities:
            if isinstance(test, FolderTestSet):
                logits, labels = _streamed_logits(run, test, name, severity, seed, source, constants, batch)
            else:
                if source is None:
                    images = corrupted_test_set(test.images, name, severity, seed, cache_dir, constants)
                    labels = test.labels
                else:
                    images, labels = _official_set(run, source, name, severity)
                logits = predict_logits(run.networks, images, run.prepare, run.precision, batch)
            for key, acc in accuracy_table(logits, labels).items():
                result.setdefault(key, {}).setdefault(name, {})[str(severity)] = acc["top1"]
    return result


def default_constants(test) -> str:
    """ImageNet-C's severity constants for image-folder test sets, CIFAR-10-C's for arrays."""
    return "imagenet" if isinstance(test, FolderTestSet) else "cifar"


def _streamed_logits(run: LoadedRun, test: FolderTestSet, name, severity, seed, source, constants, batch):
    """(logits per network, labels) of an image-folder run on one corruption and severity."""
    if source is None:
        batches = test.batches(batch, CorruptionTransform(name, severity, seed, constants))
    else:
        test = official_corruption_set(source, name, severity, test)
        batches = test.batches(batch)
    predictions = predict_batches(run.networks, batches, run.prepare, run.precision, features=False)
    return [p.logits for p in predictions], test.labels


def mean_corruption_accuracy(accuracies: Accuracies) -> float:
    """Mean top-1 (%) over all corruptions and severities of one network's {corruption: {severity: top1}}."""
    values = [v for per_severity in accuracies.values() for v in per_severity.values()]
    if not values:
        raise ValueError("no corruption accuracies to average")
    return sum(values) / len(values)


def corruption_errors(accuracies: Accuracies) -> Accuracies:
    """{corruption: {severity: top-1 error (%) = 100 - top-1}}."""
    return {c: {s: 100.0 - v for s, v in per.items()} for c, per in accuracies.items()}


def mean_corruption_error(run_errors: Accuracies, baseline_errors: Accuracies) -> dict[str, Any]:
    """mCE of one network against a baseline network, from their top-1 errors (%).

    run_errors, baseline_errors: {corruption: {severity: error (%)}}; the baseline must have every
    (corruption, severity) of the run (extra ones are ignored). Returns
    {"mce": f, "mean_error": f, "ce": {corruption: f}}: CE_c = 100 * sum_s E(c, s) / sum_s
    E_baseline(c, s), mce = mean of CE_c over corruptions (%), mean_error = unnormalised mean of E
    over corruptions and severities (%). A run compared with itself has mCE 100. Raises ValueError
    when the baseline lacks an entry or has zero error summed over a corruption's severities.
    """
    if not run_errors:
        raise ValueError("no corruption errors given")
    ce: dict[str, float] = {}
    all_errors: list[float] = []
    for name, per in run_errors.items():
        base = baseline_errors.get(name, {})
        missing = [s for s in per if s not in base]
        if missing:
            raise ValueError(f"the baseline has no error for corruption {name!r} at severities {missing}")
        denominator = sum(base[s] for s in per)
        if denominator <= 0:
            raise ValueError(
                f"the baseline makes no error on corruption {name!r} (severities {list(per)}): "
                "its corruption error is undefined"
            )
        ce[name] = 100.0 * sum(per.values()) / denominator
        all_errors.extend(per.values())
    return {"mce": sum(ce.values()) / len(ce), "mean_error": sum(all_errors) / len(all_errors), "ce": ce}


def reference_errors(spec: str) -> tuple[str, dict[str, float]]:
    """(name, {corruption: top-1 error (%) averaged over the five severities}) of a reference
    network for mCE: "alexnet" (ImageNet-C's published AlexNet errors, the official
    normalisation) or a JSON file of that form. DataError naming the file when it is not."""
    if spec == "alexnet":
        return "alexnet", {name: 100.0 * e for name, e in zip(CORRUPTIONS, ALEXNET_ERRORS)}
    path = Path(spec).expanduser()
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise DataError(f"{str(path)!r}: --reference-errors expects 'alexnet' or a JSON file ({err})") from None
    if isinstance(data, dict):
        bad = [
            k for k, v in data.items() if k not in CORRUPTIONS or isinstance(v, bool) or not isinstance(v, (int, float))
        ]
    else:
        bad = ["(not an object)"]
    if bad or not data:
        raise DataError(
            f"{str(path)!r}: expected a JSON object {{corruption: error in % averaged over severities 1-5}} "
            f"with names of {', '.join(CORRUPTIONS)}; bad entries: {bad[:5] or 'none given'}"
        )
    return path.stem, {k: float(v) for k, v in data.items()}


def check_reference(spec: str, corruptions: Sequence[str], severities: Sequence[int]) -> None:
    """Before any work: the reference errors can normalise this selection (all five severities,
    a positive error for every selected corruption); ConfigError / DataError naming what is missing."""
    name, errors = reference_errors(spec)
    if sorted(severities) != list(SEVERITIES):
        raise ConfigError(
            f"--reference-errors {spec}: published errors are means over severities 1-5, so all five are needed "
            f"(got --severities {','.join(map(str, severities))})"
        )
    missing = [c for c in corruptions if errors.get(c, 0) <= 0]
    if missing:
        raise DataError(f"--reference-errors {spec}: no positive error for {', '.join(missing)}")


def reference_mce(accuracies: Accuracies, reference: dict[str, float]) -> float:
    """mCE (%) of one network against a reference network's mean errors: for each corruption
    CE_c = 100 * mean_s E(c, s) / E_ref(c), averaged over the corruptions. The published errors
    are means over all five severities, so all five must have been evaluated (ValueError)."""
    ce = []
    for name, per in accuracies.items():
        if sorted(per) != [str(s) for s in SEVERITIES]:
            raise ValueError(f"an mCE against published errors needs all five severities of {name!r}, got {list(per)}")
        if reference.get(name, 0) <= 0:
            raise ValueError(f"the reference errors have no positive error for corruption {name!r}")
        ce.append(100.0 * sum(100.0 - v for v in per.values()) / len(per) / reference[name])
    return sum(ce) / len(ce)


def corruption_summary(
    accuracy: dict[str, Accuracies],
    seed: int,
    source: str | Path | None,
    corruptions: Sequence[str],
    severities: Sequence[int],
    baseline: dict[str, Accuracies] | None = None,
    baseline_dir: str | Path | None = None,
    constants: str = "cifar",
    reference: tuple[str, dict[str, float]] | None = None,
) -> dict[str, Any]:
    """The content of RUN_DIR/eval/corruptions.json (format in :mod:`ait.evaluate.pipeline`).

    mCE of every network (and the ensemble) is taken against the baseline's network 0, and
    against ``reference`` (name, errors) when given.
    """
    mce = None
    if baseline is not None:
        base_errors = corruption_errors(baseline["net0"])
        mce = {key: mean_corruption_error(corruption_errors(acc), base_errors)["mce"] for key, acc in accuracy.items()}
    mce_reference = None
    if reference is not None:
        name, errors = reference
        mce_reference = {"name": name, "mce": {key: reference_mce(acc, errors) for key, acc in accuracy.items()}}
    return {
        "seed": int(seed),
        "source": "local" if source is None else str(Path(source).expanduser()),
        "severities": [int(s) for s in severities],
        "corruptions": list(corruptions),
        "networks": accuracy,
        "mean_top1": {key: mean_corruption_accuracy(acc) for key, acc in accuracy.items()},
        "mce": mce,
        "baseline": None if baseline_dir is None else str(baseline_dir),
        "constants": "official" if source is not None else constants,
        "mce_reference": mce_reference,
    }

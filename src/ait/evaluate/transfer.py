"""Augmentation-transfer matrix (paper Table 5): accuracy of each network on each fixed test set.

After ``ait train configs/smoke/synthetic_resnet20_ait.yaml``::

    >>> from ait.evaluate import load_run, transfer_matrix
    >>> table = transfer_matrix(load_run("runs/smoke_synthetic_resnet20_ait/seed0", device="cpu"))
    >>> list(table["net0"])
    ['original', 'crop', 'gray', 'color']
    >>> 0 <= table["net0"]["gray"]["top1"] <= 100  # top-1 (%) of network 0 on the grayscale test set
    True
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from ait.evaluate.folders import FixedSetTransform, FolderTestSet
from ait.evaluate.loading import LoadedRun
from ait.evaluate.testsets import TEST_SETS, applicable_test_sets, fixed_test_set
from ait.runtime.predict import Predictions, accuracy_table, predict_batches, predict_outputs

SetOutputs = dict[str, list[Predictions]]  # test set name -> one Predictions per network


def predict_on_test_sets(
    run: LoadedRun,
    sets: Iterable[str] = tuple(TEST_SETS),
    seed: int = 0,
    cache_dir: str | Path | None = None,
    batch_size: int | None = None,
) -> SetOutputs:
    """Logits and pooled features of every network on each fixed test set that applies to the data.

    Sets that are no-ops for the data's channel count ("gray" for 1 channel) are left out, so the
    keys of the result are the sets actually evaluated. One forward pass per set serves both the
    transfer matrix and the variation metrics. Image-folder test sets are streamed, each set made
    image by image in the loader's workers (:mod:`ait.evaluate.folders`; nothing cached).
    """
    test = run.data.test
    names = applicable_test_sets(test.image_shape[0], sets)
    batch = batch_size or run.eval_batch_size
    outputs: SetOutputs = {}
    for name in names:
        if isinstance(test, FolderTestSet):
            batches = test.batches(batch, FixedSetTransform(name, test.size, seed))
            outputs[name] = predict_batches(run.networks, batches, run.prepare, run.precision)
        else:
            images = fixed_test_set(test.images, name, seed, cache_dir)
            outputs[name] = predict_outputs(run.networks, images, run.prepare, run.precision, batch)
    return outputs


def transfer_from_outputs(outputs: SetOutputs, labels) -> dict[str, dict[str, dict[str, float]]]:
    """{"net0": {set: {"top1", "top5"}}, ..., "ensemble": {...} (more than one network)}."""
    matrix: dict[str, dict[str, dict[str, float]]] = {}
    for name, preds in outputs.items():
        table = accuracy_table([p.logits for p in preds], labels)
        for key, acc in table.items():
            matrix.setdefault(key, {})[name] = acc
    return matrix


def transfer_matrix(
    run: LoadedRun,
    sets: Sequence[str] = ("original", "crop", "gray", "color"),
    seed: int = 0,
    cache_dir: str | Path | None = None,
    batch_size: int | None = None,
    outputs: SetOutputs | None = None,
) -> dict[str, dict[str, dict[str, float]]]:
    """Top-1 / top-5 (percent) of each network and of the ensemble on each fixed test set.

    Returns {"net0": {"original": {"top1": f, "top5": f}, "crop": {...}, ...}, ..., "ensemble": ...};
    "ensemble" (averaged probabilities) only with more than one network. ``outputs`` from
    :func:`predict_on_test_sets` skips the forward passes.
    """
    if outputs is None:
        outputs = predict_on_test_sets(run, sets, seed, cache_dir, batch_size)
    return transfer_from_outputs(outputs, run.data.test.labels)

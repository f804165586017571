"""Intra-augmentation variation (paper Figure 5): how much outputs move between fixed test sets.

For each pair of test sets (a, b) and each network, averaged over the test samples i:

    kl          symmetric KL of the predictions, KL(p_a,i || p_b,i) + KL(p_b,i || p_a,i): the
                paper's AiLoss, computed as ``ait.losses.AiLoss()(logits_a, logits_b)``
    feature_l2  Euclidean distance ||f_a,i - f_b,i||_2 of the pooled features

Lower values mean a more augmentation-invariant network.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from ait.evaluate.loading import LoadedRun
from ait.evaluate.transfer import SetOutputs, predict_on_test_sets
from ait.losses import AiLoss, euclidean_distance

PAIRS: tuple[tuple[str, str], ...] = (
    ("original", "crop"),
    ("original", "gray"),
    ("original", "color"),
    ("crop", "gray"),
    ("crop", "color"),
    ("gray", "color"),
)


def pair_key(a: str, b: str) -> str:
    """The JSON key of a pair, "original,crop"."""
    return f"{a},{b}"


def variation_from_outputs(
    outputs: SetOutputs, pairs: Sequence[tuple[str, str]] = PAIRS
) -> dict[str, dict[str, dict[str, float]]]:
    """{"net0": {"original,crop": {"kl": f, "feature_l2": f}, ...}, ...} for the pairs whose two
    sets are both in ``outputs`` (others are skipped, e.g. "gray" for 1-channel data)."""
    ai_loss = AiLoss()  # metric "kl": the symmetric KL, mean over samples
    usable = [(a, b) for a, b in pairs if a in outputs and b in outputs]
    if not outputs:
        return {}
    num_networks = len(next(iter(outputs.values())))
    result: dict[str, dict[str, dict[str, float]]] = {}
    with torch.no_grad():
        for k in range(num_networks):
            per_pair = {}
            for a, b in usable:
                pa, pb = outputs[a][k], outputs[b][k]
                per_pair[pair_key(a, b)] = {
                    "kl": float(ai_loss(pa.logits, pb.logits)),
                    "feature_l2": float(euclidean_distance(pa.feature, pb.feature).mean()),
                }
            result[f"net{k}"] = per_pair
    return result


def variation_metrics(
    run: LoadedRun,
    pairs: Sequence[tuple[str, str]] = PAIRS,
    seed: int = 0,
    cache_dir: str | Path | None = None,
    batch_size: int | None = None,
    outputs: SetOutputs | None = None,
) -> dict[str, dict[str, dict[str, float]]]:
    """Mean symmetric KL of predictions and mean feature distance per pair of test sets, per network.

    ``outputs`` from :func:`ait.evaluate.transfer.predict_on_test_sets` skips the forward passes.
    """
    if outputs is None:
        names = list(dict.fromkeys(name for pair in pairs for name in pair))
        outputs = predict_on_test_sets(run, names, seed, cache_dir, batch_size)
    return variation_from_outputs(outputs, pairs)

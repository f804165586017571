"""Predictions of networks over batches of images, and top-1 / top-5 accuracy of each network and
of their ensemble: what the training loop's test evaluation and every evaluation share."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, NamedTuple

import torch
from torch import nn

if TYPE_CHECKING:  # annotations only: keeps this module free of device set-up
    from ait.runtime.precision import Precision


class Predictions(NamedTuple):
    """One network's outputs on a whole image set, float32 on the CPU."""

    logits: torch.Tensor  # (N, num_classes)
    feature: torch.Tensor  # (N, F) pooled feature (ModelOutputs.feature)


@torch.no_grad()
def predict_batches(
    networks: Sequence[nn.Module], batches: Iterable[torch.Tensor], prepare, precision: Precision, features: bool = True
) -> list[Predictions]:
    """Logits (and pooled features unless ``features`` is False) of every network for every image of
    ``batches``, an iterable of uint8 (n, C, H, W) tensors on any device (in-memory slices, or a
    data loader streaming from disk). Returns one :class:`Predictions` per network, in batch order;
    without features, ``feature`` is an empty (N, 0) tensor."""
    was_training = [net.training for net in networks]
    for net in networks:
        net.eval()
    logits: list[list[torch.Tensor]] = [[] for _ in networks]
    feats: list[list[torch.Tensor]] = [[] for _ in networks]
    try:
        for batch in batches:
            x = prepare(batch.to(precision.device, non_blocking=True))
            with precision.autocast():
                for k, net in enumerate(networks):
                    out = net.forward_all(x)
                    logits[k].append(out.logits.float().cpu())
                    feats[k].append(out.feature.float().cpu() if features else out.logits.new_empty(len(x), 0).cpu())
    finally:
        for net, mode in zip(networks, was_training):
            net.train(mode)
    if not logits[0]:
        raise ValueError("no images to predict")
    return [Predictions(torch.cat(lg), torch.cat(f)) for lg, f in zip(logits, feats)]


def predict_outputs(
    networks: Sequence[nn.Module], images: torch.Tensor, prepare, precision: Precision, batch_size: int = 500
) -> list[Predictions]:
    """Logits and pooled features of every network for every image (one forward pass each).

    images: (N, C, H, W) uint8 (on any device); networks must have ``forward_all`` (every
    ``ait.models.Classifier`` does). Returns one :class:`Predictions` per network.
    """
    slices = (images[start : start + batch_size] for start in range(0, images.shape[0], batch_size))
    return predict_batches(networks, slices, prepare, precision)


def predict_logits(
    networks: Sequence[nn.Module], images: torch.Tensor, prepare, precision: Precision, batch_size: int = 500
) -> list[torch.Tensor]:
    """Logits (N, num_classes) of every network for every image, float32 on the CPU.

    images: (N, C, H, W) uint8 (on any device); ``prepare`` maps a uint8 batch on the training
    device to the normalised network input.
    """
    slices = (images[start : start + batch_size] for start in range(0, images.shape[0], batch_size))
    return [p.logits for p in predict_batches(networks, slices, prepare, precision, features=False)]


def topk_accuracy(logits: torch.Tensor, labels: torch.Tensor, k: int) -> float:
    """Percentage of samples whose label is among the k largest logits, (N, K) x (N,) -> float."""
    k = min(k, logits.shape[1])
    hits = (logits.topk(k, dim=1).indices == labels.view(-1, 1)).any(dim=1)
    return 100.0 * int(hits.sum()) / hits.numel()  # exact: a float32 mean made 10% 10.000000149


def accuracy_table(logits: Sequence[torch.Tensor], labels: torch.Tensor) -> dict[str, dict[str, float]]:
    """{"net0": {"top1", "top5"}, ..., "ensemble": {...}} for per-network logits (N, K)."""
    labels = labels.cpu()
    table = {
        f"net{k}": {"top1": topk_accuracy(lg, labels, 1), "top5": topk_accuracy(lg, labels, 5)}
        for k, lg in enumerate(logits)
    }
    if len(logits) > 1:
        # The ensemble averages probabilities, the usual way to combine independently trained peers.
        probs = torch.stack([lg.softmax(dim=1) for lg in logits]).mean(dim=0)
        table["ensemble"] = {"top1": topk_accuracy(probs, labels, 1), "top5": topk_accuracy(probs, labels, 5)}
    return table


def evaluate_accuracy(
    networks: Sequence[nn.Module],
    images: torch.Tensor,
    labels: torch.Tensor,
    prepare,
    precision: Precision,
    batch_size: int = 500,
) -> dict[str, dict[str, float]]:
    """Top-1 and top-5 (percent) of each network and of the ensemble on (images, labels)."""
    return accuracy_table(predict_logits(networks, images, prepare, precision, batch_size), labels)

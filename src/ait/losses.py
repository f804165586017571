"""Consistency losses: the AiLoss of the paper and the mutual loss of DML / multi-AIT.

The paper's AiLoss between the predictions p1, p2 of two augmented variants of one sample is the
symmetric KL divergence KL(p1 || p2) + KL(p2 || p1) (paper eq. 2). Following the authors' code
(docs/design.md, "The method's exact choices"), each direction treats its target as a constant
(stop-gradient), and for
V >= 2 outputs the loss is the sum over ordered pairs (i, j), i != j, divided by V - 1::

    AiLoss(o_1..o_V) = 1 / (V - 1) * sum_{i != j} D(target=o_i, prediction=o_j)

averaged over samples. For V = 2 and D = KL this is exactly the symmetric KL. The same sum, with
the outputs of different networks instead of different views, is the mutual loss of DML and
multi-AIT: network j's share is the sum of the terms where o_j is the prediction.

Metrics D (paper sec. 4.2.1 compares the first three):

- ``"kl"``: KL(softmax(o_i / T) || softmax(o_j / T)) * T^2, summed over the flattened dimension.
- ``"euclidean"``: ||o_i - o_j||_2 over the flattened dimension (no softmax). Summed over ordered
  pairs, so for V = 2 the value is twice the distance, mirroring the symmetric KL.
- ``"kl+euclidean"``: the sum of the two.
- ``"js"``: Jensen-Shannon divergence of the softmax distributions (bounded by log 2).
- ``"jsd"``: AugMix's Jensen-Shannon consistency (Hendrycks et al., 2020) over all V outputs at
  once, not over pairs: (1 / V) * sum_i KL(p_i || M) with M = clamp(mean_j p_j, 1e-7, 1), averaged
  over samples, gradients through every term (``detach_target`` does not apply): the value of
  AugMix's code (``F.kl_div(log M, p_i, reduction="batchmean")``), computed from log p_i so that
  its gradient stays finite where a probability underflows to 0 (AugMix's is NaN there). Its value
  is V times smaller than a pair-summed metric of the same disagreement: AugMix weights it by 12.
- ``"mse"``: mean over the flattened dimension of (o_i - o_j)^2, and ``"kl+mse"`` with KL added.
  Unlike the plain distance, whose gradient has unit length however close the two outputs are,
  its pull fades as the outputs agree (why the plain distance collapsed training and this one did
  not: docs/results.md, claim 6).

Everything is computed in float32 and in log space (``log_softmax`` on both sides), so the loss is
finite for logits of +-1e4, for near one-hot predictions and under bf16 autocast.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

METRICS = ("kl", "euclidean", "kl+euclidean", "js", "jsd", "mse", "kl+mse")
JSD_CLAMP = 1e-7  # AugMix's floor of the mixture before its log


def _flatten(x: torch.Tensor) -> torch.Tensor:
    """(N, ...) -> (N, D), at least float32: feature maps are compared as one vector per sample.

    Half-precision outputs (bf16 autocast) are promoted so that the loss is computed in float32.
    """
    if x.dtype != torch.float64:
        x = x.float()
    return x.reshape(x.shape[0], -1)


def kl_divergence(target_logits: torch.Tensor, pred_logits: torch.Tensor) -> torch.Tensor:
    """KL(softmax(target) || softmax(pred)) per sample, (N, D) x (N, D) -> (N,)."""
    log_p = F.log_softmax(target_logits, dim=1)
    log_q = F.log_softmax(pred_logits, dim=1)
    # kl_div with log_target computes exp(log_p) * (log_p - log_q) without forming 0 * log 0.
    return F.kl_div(log_q, log_p, reduction="none", log_target=True).sum(dim=1)


def js_divergence(a_logits: torch.Tensor, b_logits: torch.Tensor) -> torch.Tensor:
    """Jensen-Shannon divergence per sample, (N, D) x (N, D) -> (N,), in [0, log 2]."""
    log_p = F.log_softmax(a_logits, dim=1)
    log_q = F.log_softmax(b_logits, dim=1)
    # log of the mixture m = (p + q) / 2, computed stably in log space.
    log_m = torch.logsumexp(torch.stack([log_p, log_q]), dim=0) - math.log(2.0)
    kl_pm = F.kl_div(log_m, log_p, reduction="none", log_target=True).sum(dim=1)
    kl_qm = F.kl_div(log_m, log_q, reduction="none", log_target=True).sum(dim=1)
    return 0.5 * (kl_pm + kl_qm)


def euclidean_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """||a - b||_2 per sample, (N, D) x (N, D) -> (N,). Its gradient at a == b is zero."""
    return torch.linalg.vector_norm(a - b, dim=1)


def mean_squared_difference(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """mean_d (a_d - b_d)^2 per sample, (N, D) x (N, D) -> (N,)."""
    return (a - b).pow(2).mean(dim=1)


def jsd_terms(outputs: Sequence[torch.Tensor], temperature: float = 1.0) -> torch.Tensor:
    """(V,): KL(p_i || M) of each output, averaged over samples and divided by V, so that the sum
    is AugMix's JSD; outputs (N, D) logits each, M = clamp(mean_j p_j, JSD_CLAMP, 1)."""
    log_probs = [F.log_softmax(o / temperature, dim=1) for o in outputs]
    log_mixture = torch.clamp(torch.stack(log_probs).exp().mean(dim=0), JSD_CLAMP, 1.0).log()
    # log_target: p * (log p - log M) from log p, finite where p underflows to 0 (AugMix's
    # F.kl_div(log M, p) has the same value there but a NaN gradient).
    terms = [F.kl_div(log_mixture, lp, reduction="batchmean", log_target=True) for lp in log_probs]
    return torch.stack(terms) * (temperature * temperature) / len(outputs)


# The terms a metric is made of, per sample: (N, D) x (N, D) -> (N,).
SOFTMAX_TERMS = {"kl": kl_divergence, "js": js_divergence}
VECTOR_TERMS = {"euclidean": euclidean_distance, "mse": mean_squared_difference}


class AiLoss(nn.Module):
    """Augmentation-invariance loss between the outputs of V >= 2 variants of the same samples.

    Args:
        metric: one of ``METRICS``; ``"kl"`` (default) is the paper's symmetric KL.
        detach_target: treat the target side of each ordered pair as a constant (the authors'
            implementation). With ``False`` the gradient flows through both sides.
        temperature: softmax temperature for the KL / JS metrics; the loss is scaled by T^2 so that
            its gradient keeps the same magnitude as T changes (Hinton et al., 2015).

    Call as ``loss(a, b)`` or ``loss(o_1, ..., o_V)`` or ``loss([o_1, ..., o_V])`` with tensors of
    shape (N, D) or (N, C, H, W) (flattened per sample); returns a scalar.
    """

    def __init__(self, metric: str = "kl", detach_target: bool = True, temperature: float = 1.0):
        super().__init__()
        if metric not in METRICS:
            raise ValueError(f"unknown AiLoss metric {metric!r}; expected one of {', '.join(METRICS)}")
        if not (isinstance(temperature, (int, float)) and temperature > 0 and math.isfinite(temperature)):
            raise ValueError(f"AiLoss temperature must be a positive finite number, got {temperature!r}")
        self.metric = metric
        self.detach_target = bool(detach_target)
        self.temperature = float(temperature)

    def extra_repr(self) -> str:
        return f"metric={self.metric!r}, detach_target={self.detach_target}, temperature={self.temperature}"

    def pair(self, target: torch.Tensor, pred: torch.Tensor) -> torch.Tensor:
        """D(target, pred) per sample for one ordered pair, (N, D) x (N, D) -> (N,)."""
        if self.detach_target:
            target = target.detach()
        t = self.temperature
        terms = []
        for name in self.metric.split("+"):  # "kl+mse" is the sum of the KL and MSE terms
            if name in SOFTMAX_TERMS:  # on tempered logits, scaled by T^2
                terms.append(SOFTMAX_TERMS[name](target / t, pred / t) * (t * t))
            else:
                terms.append(VECTOR_TERMS[name](target, pred))
        return torch.stack(terms).sum(dim=0)

    def per_output(self, outputs: Sequence[torch.Tensor]) -> torch.Tensor:
        """The share of each output, (V,): entry j sums the terms where output j is the prediction.

        With ``detach_target`` entry j carries all the gradient that output j receives, which is
        what a network in DML / multi-AIT is trained with. ``per_output(...).sum() == forward(...)``.
        """
        flat = self._check(outputs)
        if self.metric == "jsd":  # one mixture of all outputs, not pairs: each output's KL to it
            return jsd_terms(flat, self.temperature)
        v = len(flat)
        shares = []
        for j in range(v):
            terms = [self.pair(flat[i], flat[j]) for i in range(v) if i != j]
            shares.append(torch.stack(terms).sum(dim=0).mean() / (v - 1))
        return torch.stack(shares)

    def forward(self, *outputs) -> torch.Tensor:
        if len(outputs) == 1 and isinstance(outputs[0], (list, tuple)):
            outputs = tuple(outputs[0])
        return self.per_output(outputs).sum()

    @staticmethod
    def _check(outputs: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        if len(outputs) < 2:
            raise ValueError(f"AiLoss needs at least two outputs to compare, got {len(outputs)}")
        shapes = [tuple(o.shape) for o in outputs]
        if any(s != shapes[0] for s in shapes) or len(shapes[0]) < 2:
            raise ValueError(f"AiLoss outputs must all have the same shape (N, D) or (N, C, H, W); got shapes {shapes}")
        return [_flatten(o) for o in outputs]


def mutual_loss(
    outputs: Sequence[torch.Tensor], metric: str = "kl", detach_target: bool = True, temperature: float = 1.0
) -> torch.Tensor:
    """Per-network mutual-learning loss for DML / multi-AIT, (V,) for V network outputs (N, D).

    Entry k is 1 / (V - 1) * sum_{j != k} KL(p_j || p_k): network k learns from its peers (Zhang et
    al., 2018). It is :meth:`AiLoss.per_output` with networks in place of views.
    """
    return AiLoss(metric, detach_target, temperature).per_output(outputs)

"""AiLoss against a plain float64 reference, its symmetry, gradients and numerics."""

import math

import pytest
import torch

from ait.losses import METRICS, AiLoss, js_divergence, kl_divergence, mutual_loss


def ref_kl(p_logits, q_logits):
    """Plain KL(softmax p || softmax q) per sample in float64, written from the definition."""
    p = torch.softmax(p_logits.double(), dim=1)
    q = torch.softmax(q_logits.double(), dim=1)
    return (p * (p.log() - q.log())).sum(dim=1)


def ref_ailoss(outputs, metric="kl", detach=True):
    """Reference: sum over ordered pairs (i, j) of D(o_i, o_j), / (V - 1), mean over samples."""
    v = len(outputs)
    flat = [o.double().reshape(o.shape[0], -1) for o in outputs]
    total = 0.0
    for i in range(v):
        for j in range(v):
            if i == j:
                continue
            t = flat[i].detach() if detach else flat[i]
            d = 0.0
            if "kl" in metric:
                d = d + ref_kl(t, flat[j])
            if "euclidean" in metric:
                d = d + ((t - flat[j]) ** 2).sum(dim=1).sqrt()
            if "mse" in metric:
                d = d + ((t - flat[j]) ** 2).mean(dim=1)
            total = total + d
    return (total / (v - 1)).mean()


@pytest.fixture
def logits():
    g = torch.Generator().manual_seed(0)
    return torch.randn(8, 10, generator=g, dtype=torch.float64) * 3, torch.randn(
        8, 10, generator=g, dtype=torch.float64
    ) * 3


def test_default_is_symmetric_kl_of_the_paper(logits):
    a, b = logits
    expected = (ref_kl(a, b) + ref_kl(b, a)).mean()
    assert torch.allclose(AiLoss()(a, b), expected, rtol=1e-10)


@pytest.mark.parametrize("metric", ["kl", "euclidean", "kl+euclidean", "mse", "kl+mse"])
@pytest.mark.parametrize("v", [2, 3, 4])
def test_matches_reference_for_v_outputs(metric, v):
    g = torch.Generator().manual_seed(v)
    outs = [torch.randn(5, 7, generator=g, dtype=torch.float64) for _ in range(v)]
    assert torch.allclose(AiLoss(metric)(outs), ref_ailoss(outs, metric), rtol=1e-10)


def test_js_matches_definition(logits):
    a, b = logits
    p, q = torch.softmax(a, 1), torch.softmax(b, 1)
    m = (p + q) / 2
    expected = 0.5 * (p * (p / m).log()).sum(1) + 0.5 * (q * (q / m).log()).sum(1)
    assert torch.allclose(js_divergence(a, b), expected, rtol=1e-10)
    assert (js_divergence(a, b) <= math.log(2) + 1e-12).all()


@pytest.mark.parametrize("metric", METRICS)
def test_symmetric_and_zero_for_identical_inputs(metric, logits):
    a, b = logits
    loss = AiLoss(metric)
    assert torch.allclose(loss(a, b), loss(b, a), rtol=1e-12)
    assert loss(a, a.clone()).item() == pytest.approx(0.0, abs=1e-12)
    assert loss(a, b).item() > 0


def test_kl_known_value():
    # Two classes, p = (1/2, 1/2) vs q = softmax(0, log 3) = (1/4, 3/4).
    a = torch.tensor([[0.0, 0.0]], dtype=torch.float64)
    b = torch.tensor([[0.0, math.log(3.0)]], dtype=torch.float64)
    kl_pq = 0.5 * math.log(0.5 / 0.25) + 0.5 * math.log(0.5 / 0.75)
    kl_qp = 0.25 * math.log(0.25 / 0.5) + 0.75 * math.log(0.75 / 0.5)
    assert kl_divergence(a, b).item() == pytest.approx(kl_pq, rel=1e-12)
    assert AiLoss()(a, b).item() == pytest.approx(kl_pq + kl_qp, rel=1e-12)


@pytest.mark.parametrize("detach", [True, False])
@pytest.mark.parametrize("metric", ["kl", "euclidean", "kl+euclidean", "mse", "kl+mse"])
def test_gradients_match_reference_autograd(detach, metric, logits):
    a, b = logits
    a1, b1 = a.clone().requires_grad_(), b.clone().requires_grad_()
    a2, b2 = a.clone().requires_grad_(), b.clone().requires_grad_()
    AiLoss(metric, detach_target=detach)(a1, b1).backward()
    ref_ailoss([a2, b2], metric, detach).backward()
    assert torch.allclose(a1.grad, a2.grad, rtol=1e-8, atol=1e-12)
    assert torch.allclose(b1.grad, b2.grad, rtol=1e-8, atol=1e-12)


def test_euclidean_pulls_with_unit_force_mse_with_a_fading_one():
    # Why the plain distance can collapse a network (docs/results.md, claim 6): the gradient it puts
    # on the prediction has the same length whether the two outputs are far apart or nearly equal.
    g = torch.Generator().manual_seed(3)
    target = torch.randn(1, 16, generator=g, dtype=torch.float64)
    direction = torch.randn(1, 16, generator=g, dtype=torch.float64)
    lengths = {}
    for metric in ("euclidean", "mse"):
        for gap in (1.0, 1e-3):
            pred = (target + gap * direction).requires_grad_()
            AiLoss(metric).pair(target, pred).sum().backward()
            lengths[metric, gap] = pred.grad.norm().item()
    assert lengths["euclidean", 1.0] == pytest.approx(1.0) and lengths["euclidean", 1e-3] == pytest.approx(1.0)
    assert lengths["mse", 1e-3] == pytest.approx(lengths["mse", 1.0] * 1e-3)


def test_stop_gradient_changes_the_gradient(logits):
    a, b = logits
    grads = []
    for detach in (True, False):
        x = a.clone().requires_grad_()
        AiLoss(detach_target=detach)(x, b).backward()
        grads.append(x.grad)
    assert not torch.allclose(grads[0], grads[1])


def test_detached_gradient_of_one_side_is_its_share():
    # With stop-gradient, output j is moved only by the terms where it is the prediction.
    g = torch.Generator().manual_seed(1)
    outs = [torch.randn(4, 6, generator=g, dtype=torch.float64, requires_grad=True) for _ in range(3)]
    shares = AiLoss().per_output(outs)
    assert torch.allclose(shares.sum(), AiLoss()(outs))
    (grad_share,) = torch.autograd.grad(shares[1], outs[1], retain_graph=True)
    (grad_total,) = torch.autograd.grad(AiLoss()(outs), outs[1])
    assert torch.allclose(grad_share, grad_total)


def test_feature_maps_are_flattened_per_sample():
    g = torch.Generator().manual_seed(2)
    a = torch.randn(3, 4, 2, 2, generator=g, dtype=torch.float64)
    b = torch.randn(3, 4, 2, 2, generator=g, dtype=torch.float64)
    for metric in METRICS:
        assert torch.allclose(AiLoss(metric)(a, b), AiLoss(metric)(a.reshape(3, -1), b.reshape(3, -1)))


def test_temperature_scales_as_documented(logits):
    a, b = logits
    t = 4.0
    expected = (ref_kl(a / t, b / t) + ref_kl(b / t, a / t)).mean() * t * t
    assert torch.allclose(AiLoss(temperature=t)(a, b), expected, rtol=1e-10)


def test_mutual_loss_is_per_network_share():
    g = torch.Generator().manual_seed(3)
    outs = [torch.randn(6, 5, generator=g, dtype=torch.float64) for _ in range(3)]
    shares = mutual_loss(outs)
    assert shares.shape == (3,)
    expected_0 = 0.5 * (ref_kl(outs[1], outs[0]) + ref_kl(outs[2], outs[0])).mean()
    assert shares[0].item() == pytest.approx(expected_0.item(), rel=1e-10)


@pytest.mark.parametrize("scale", [1e2, 1e4])
def test_finite_for_huge_logits(scale):
    g = torch.Generator().manual_seed(4)
    a = (torch.randn(16, 100, generator=g) * scale).requires_grad_()
    b = (torch.randn(16, 100, generator=g) * scale).requires_grad_()
    for metric in METRICS:
        loss = AiLoss(metric)(a, b)
        loss.backward()
        assert torch.isfinite(loss)
        assert torch.isfinite(a.grad).all() and torch.isfinite(b.grad).all()
        a.grad = b.grad = None


def test_finite_for_near_one_hot_predictions():
    a = torch.full((4, 10), -1e4)
    a[:, 0] = 1e4  # p = one-hot on class 0 (exp underflows to exactly 0 elsewhere)
    b = torch.full((4, 10), -1e4)
    b[:, 1] = 1e4
    loss = AiLoss()(a, b)
    assert torch.isfinite(loss) and loss.item() > 1e3  # huge but finite: the classes disagree
    assert AiLoss()(a, a.clone()).item() == 0.0


def test_under_bf16_autocast():
    g = torch.Generator().manual_seed(5)
    lin = torch.nn.Linear(8, 10)
    x1, x2 = torch.randn(4, 8, generator=g), torch.randn(4, 8, generator=g)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        a, b = lin(x1), lin(x2)
        assert a.dtype == torch.bfloat16
        loss = AiLoss()(a, b)
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    loss.backward()
    assert torch.isfinite(lin.weight.grad).all()
    # Close to the float32 value of the same bf16 outputs.
    assert loss.item() == pytest.approx(AiLoss()(a.float(), b.float()).item(), rel=1e-5)


def test_invalid_arguments_name_allowed_values_and_shapes():
    with pytest.raises(ValueError, match="kl, euclidean, kl\\+euclidean, js"):
        AiLoss("cosine")
    with pytest.raises(ValueError, match="temperature"):
        AiLoss(temperature=0)
    with pytest.raises(ValueError, match=r"\(4, 10\).*\(4, 9\)"):
        AiLoss()(torch.zeros(4, 10), torch.zeros(4, 9))
    with pytest.raises(ValueError, match="at least two outputs to compare, got 1"):
        AiLoss()(torch.zeros(4, 10))
    with pytest.raises(ValueError, match="same shape"):
        AiLoss()(torch.zeros(4), torch.zeros(4))


def test_jsd_is_augmixs_mixture_form_in_value_and_gradient():
    """A float64 reference written from AugMix's formula: (1/V) sum_i KL(p_i || M), M clamped."""
    from ait.losses import AiLoss

    torch.manual_seed(0)
    logits = [torch.randn(6, 10, dtype=torch.float64, requires_grad=True) for _ in range(3)]
    logits[2].data[0] = torch.tensor([40.0] + [-40.0] * 9, dtype=torch.float64)  # a near one-hot: the clamp acts

    def reference(outs):
        probs = [torch.exp(o - torch.logsumexp(o, dim=1, keepdim=True)) for o in outs]
        mixture = torch.clamp(sum(probs) / len(probs), 1e-7, 1.0)
        kls = [(torch.where(p > 0, p * (torch.log(p) - torch.log(mixture)), 0.0)).sum(1).mean() for p in probs]
        return sum(kls) / len(kls)

    ours = AiLoss("jsd")(*logits)
    expected = reference(logits)
    assert ours.item() == pytest.approx(expected.item(), rel=1e-9)
    grads = torch.autograd.grad(ours, logits)
    expected_grads = torch.autograd.grad(reference(logits), logits)
    for g, e in zip(grads, expected_grads):
        torch.testing.assert_close(g, e, rtol=1e-9, atol=1e-12)
    assert all(g.abs().sum() > 0 for g in grads)  # every output gets a gradient: no stop-gradient

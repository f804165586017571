"""The branch trainer: what each strategy feeds each network, the loss it forms, the guard."""

import pytest
import torch

from ait import models
from ait.config import ConsistencyConfig
from ait.engine.trainer import BranchTrainer, NonFiniteLossError
from ait.runtime.precision import resolve_precision
from ait.views import parse_recipe

CPU_FP32 = resolve_precision(torch.device("cpu"), "fp32", False)


class Recorder(torch.nn.Module):
    """Wraps a network and keeps the inputs of its last forward pass."""

    def __init__(self, net):
        super().__init__()
        self.net, self.inputs = net, None

    def forward_all(self, x):
        self.inputs = x.detach().clone()
        return self.net.forward_all(x)


def make(strategy_branches, n_networks, recipes, weight=1.0, wrap=False):
    torch.manual_seed(0)
    nets = [models.create("test_tiny", 10) for _ in range(n_networks)]
    if wrap:
        nets = [Recorder(n) for n in nets]
    trainer = BranchTrainer(
        nets,
        [parse_recipe(r) for r in recipes],
        strategy_branches,
        ConsistencyConfig(weight=weight),
        CPU_FP32,
        (0.5, 0.5, 0.5),
        (0.25, 0.25, 0.25),
    )
    return trainer, nets


@pytest.fixture
def batch():
    g = torch.Generator().manual_seed(1)
    return torch.randint(0, 256, (8, 3, 32, 32), generator=g, dtype=torch.uint8), torch.randint(
        0, 10, (8,), generator=g
    )


def test_ait_one_network_sees_both_views_in_one_pass(batch):
    images, labels = batch
    trainer, nets = make([(0, 0), (0, 1)], 1, ["rh", "rh"], wrap=True)  # views: each sample or its mirror
    trainer.loss(images, labels, torch.Generator().manual_seed(3))
    seen = nets[0].inputs
    assert seen.shape == (16, 3, 32, 32)
    original = trainer.prepare_eval(images)
    for half in (seen[:8], seen[8:]):  # view v of sample i is at v * 8 + i
        for i in range(8):
            assert torch.allclose(half[i], original[i]) or torch.allclose(half[i], original[i].flip(-1))
    assert not torch.equal(seen[:8], seen[8:])  # the two views are drawn independently


def test_dml_networks_share_the_view_and_multi_ait_networks_do_not(batch):
    images, labels = batch
    trainer, nets = make([(0, 0), (1, 0)], 2, ["rp"], wrap=True)
    trainer.loss(images, labels, torch.Generator().manual_seed(3))
    assert torch.equal(nets[0].inputs, nets[1].inputs)
    trainer, nets = make([(0, 0), (1, 1)], 2, ["rp", "rp"], wrap=True)
    trainer.loss(images, labels, torch.Generator().manual_seed(3))
    assert nets[0].inputs.shape == (8, 3, 32, 32)
    assert not torch.equal(nets[0].inputs, nets[1].inputs)


def test_total_is_ce_plus_lambda_times_consistency(batch):
    images, labels = batch
    for weight in (0.5, 2.0):
        trainer, _ = make([(0, 0), (0, 1)], 1, ["rp", "rp"], weight=weight)
        total, stats = trainer.loss(images, labels, torch.Generator().manual_seed(3))
        assert stats.consistency.item() > 0
        assert total.item() == pytest.approx(stats.ce.sum().item() + weight * stats.consistency.item(), rel=1e-6)


def test_lambda_zero_trains_on_ce_alone(batch):
    images, labels = batch
    trainer, nets = make([(0, 0), (0, 1)], 1, ["rp", "rp"], weight=0.0)
    total, stats = trainer.loss(images, labels, torch.Generator().manual_seed(3))
    assert total.item() == pytest.approx(stats.ce.sum().item())
    assert stats.consistency.item() > 0  # still measured and logged


def test_same_generator_seed_same_loss(batch):
    images, labels = batch
    trainer, _ = make([(0, 0), (0, 1)], 1, ["rpgc", "rpgc"])
    a, _ = trainer.loss(images, labels, torch.Generator().manual_seed(5))
    b, _ = trainer.loss(images, labels, torch.Generator().manual_seed(5))
    c, _ = trainer.loss(images, labels, torch.Generator().manual_seed(6))
    assert a.item() == b.item() and a.item() != c.item()


def test_step_updates_every_network_and_counts_images(batch):
    images, labels = batch
    trainer, nets = make([(0, 0), (1, 1)], 2, ["rp", "rg"])
    opts = [torch.optim.SGD(n.parameters(), lr=0.1) for n in nets]
    before = [n.head.weight.detach().clone() for n in nets]
    stats = trainer.step(images, labels, opts, generator=torch.Generator().manual_seed(0))
    assert all(not torch.equal(b, n.head.weight) for b, n in zip(before, nets))
    assert stats.images == [8, 8] and stats.ce.shape == (2,)


def test_non_finite_loss_stops_before_any_update(batch):
    images, labels = batch
    trainer, nets = make([(0, 0), (1, 0)], 2, ["rp"])
    opts = [torch.optim.SGD(n.parameters(), lr=0.1) for n in nets]
    with torch.no_grad():
        nets[1].head.bias[0] = float("nan")
    before = [{k: v.clone() for k, v in n.state_dict().items()} for n in nets]
    with pytest.raises(NonFiniteLossError, match="no weights were updated"):
        trainer.step(images, labels, opts, generator=torch.Generator().manual_seed(0))
    for b, n in zip(before, nets):
        for k, v in n.state_dict().items():
            if "num_batches_tracked" in k or "running" in k:
                continue  # BN statistics move in the forward pass; the weights must not
            torch.testing.assert_close(v, b[k], rtol=0, atol=0, equal_nan=True, msg=f"{k} was updated")


def _fused(nets):
    from ait.config import OptimConfig
    from ait.engine.optim import build_optimizer

    return [build_optimizer(n, "test_tiny", OptimConfig(lr=0.1, momentum=0.9)) for n in nets]


def test_non_finite_gradients_with_a_finite_loss_change_no_weight_momentum_or_statistic(batch):
    images, labels = batch
    trainer, nets = make([(0, 0), (1, 0)], 2, ["rp"])
    opts = _fused(nets)
    nets[1].head.weight.register_hook(lambda g: g * float("inf"))  # the loss stays finite
    before = [{k: v.clone() for k, v in n.state_dict().items()} for n in nets]
    momentum = [[o.state[p]["momentum_buffer"].clone() for p in n.parameters()] for n, o in zip(nets, opts)]
    with pytest.raises(NonFiniteLossError, match=r"non-finite gradients of net1 \(the loss was finite\)"):
        trainer.step(images, labels, opts, generator=torch.Generator().manual_seed(0))
    for b, n in zip(before, nets):  # BatchNorm statistics included: put back after the forward moved them
        assert all(torch.equal(b[k], v) for k, v in n.state_dict().items())
    for m, n, o in zip(momentum, nets, opts):
        assert all(torch.equal(x, o.state[p]["momentum_buffer"]) for x, p in zip(m, n.parameters()))


def test_poisoned_batchnorm_statistics_skip_the_step_and_are_put_back(batch):
    images, labels = batch
    trainer, nets = make([(0, 0)], 1, ["rp"])
    opts = _fused(nets)
    # Huge activations: the batch variance overflows, the normalised output (and the loss) stays finite.
    nets[0].body[1].register_forward_pre_hook(lambda m, args: (args[0] * 1e30,))
    before = {k: v.clone() for k, v in nets[0].state_dict().items()}
    with pytest.raises(NonFiniteLossError, match="non-finite BatchNorm statistics of net0"):
        trainer.step(images, labels, opts, generator=torch.Generator().manual_seed(0))
    assert all(torch.equal(before[k], v) for k, v in nets[0].state_dict().items())


def test_an_update_that_overflows_the_weights_is_named(batch):
    from ait.engine.trainer import NonFiniteWeightsError

    images, labels = batch
    trainer, nets = make([(0, 0)], 1, ["rp"])
    nets[0].head.weight.register_hook(lambda g: g * 1e30)  # still finite
    opt = torch.optim.SGD(nets[0].parameters(), lr=1e10, fused=True)  # but the update overflows
    with pytest.raises(NonFiniteWeightsError, match="the update made the weights of net0 NaN or infinite"):
        trainer.step(images, labels, [opt], generator=torch.Generator().manual_seed(0))


def test_network_without_branch_is_an_error():
    with pytest.raises(ValueError, match="every network needs at least one branch"):
        make([(0, 0)], 2, ["rp"])


def make_premade(branches, n_networks):
    """A trainer whose views come from the data loader (no recipes), with recording networks."""
    torch.manual_seed(0)
    nets = [Recorder(models.create("test_tiny", 10)) for _ in range(n_networks)]
    trainer = BranchTrainer(nets, None, branches, ConsistencyConfig(), CPU_FP32, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    return trainer, nets


def test_premade_views_are_only_normalised_and_routed_like_made_ones(batch):
    images, labels = batch
    views = torch.stack([images, images.flip(-1)], dim=1)  # uint8 (8, 2, 3, 32, 32) from a "loader"
    first, second = images, images.flip(-1)
    trainer, nets = make_premade([(0, 0), (0, 1)], 1)  # AIT: both views, view-major, in one pass
    total, stats = trainer.loss(views, labels)
    prepare = trainer.prepare_eval
    assert torch.equal(nets[0].inputs, torch.cat([prepare(first), prepare(second)]))
    assert stats.images == [16] and stats.consistency.item() > 0 and torch.isfinite(total)

    trainer, nets = make_premade([(0, 0), (1, 1)], 2)  # multi-AIT: each network its own view
    trainer.loss(views, labels)
    assert torch.equal(nets[0].inputs, prepare(first)) and torch.equal(nets[1].inputs, prepare(second))

    trainer, nets = make_premade([(0, 0), (1, 0)], 2)  # DML: one view shared (a 1-view loader)
    trainer.loss(views[:, :1], labels)
    assert torch.equal(nets[0].inputs, prepare(first)) and torch.equal(nets[1].inputs, prepare(first))

    with pytest.raises(ValueError, match="views come from the data loader"):
        trainer.loss(images, labels)  # no recipes: it cannot augment
    with pytest.raises(ValueError, match=r"\(B, V, C, H, W\)"):
        make_premade([(0, 0), (0, 1)], 1)[0].loss(views[:, :1], labels)  # one view short


def test_label_smoothing_is_the_cross_entropys_own(batch):
    images, labels = batch
    torch.manual_seed(0)
    net = Recorder(models.create("test_tiny", 10))
    mean, std = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)
    trainer = BranchTrainer(
        [net], [parse_recipe("rh")], [(0, 0)], ConsistencyConfig(), CPU_FP32, mean, std, label_smoothing=0.1
    )
    _, stats = trainer.loss(images, labels, torch.Generator().manual_seed(3))
    logits = net.net(net.inputs)  # the same pass again: train-mode BatchNorm gives the same logits
    smoothed = torch.nn.functional.cross_entropy(logits, labels, label_smoothing=0.1)
    assert stats.ce.item() == pytest.approx(smoothed.item(), rel=1e-5)
    assert stats.ce.item() != pytest.approx(torch.nn.functional.cross_entropy(logits, labels).item(), rel=1e-3)

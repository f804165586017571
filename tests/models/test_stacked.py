"""K seeds as one stacked model: equal to each seed's own network, through the trainer's step too."""

import copy

import pytest
import torch

from ait import models
from ait.config import ConsistencyConfig, OptimConfig
from ait.engine.optim import build_optimizer, build_scheduler
from ait.engine.trainer import BranchTrainer
from ait.models.base import ModelOutputs
from ait.models.stacked import StackedNetworks
from ait.runtime.precision import resolve_precision

K = 3
CPU_FP32 = resolve_precision(torch.device("cpu"), "fp32", False)


def seeded_networks(name="resnet20", k=K, dtype=torch.float64):
    nets = []
    for seed in range(k):
        torch.manual_seed(seed)
        nets.append(models.create(name, 10).to(dtype))
    return nets


def test_outputs_gradients_and_batchnorm_statistics_equal_each_networks_own():
    nets = seeded_networks()
    alone = copy.deepcopy(nets)
    stacked = StackedNetworks(nets).train()
    g = torch.Generator().manual_seed(0)
    x = torch.randn(K * 4, 3, 32, 32, generator=g, dtype=torch.float64)  # sample j for seed j % K
    y = torch.randint(0, 10, (K * 4,), generator=g)
    out = stacked.forward_all(x)
    torch.nn.functional.cross_entropy(out.logits, y).backward()  # the mean over all seeds' samples
    grads = {name: t.grad for name, t in stacked.stacked_state().items() if t.requires_grad}
    for k, net in enumerate(alone):
        own = net.forward_all(x[k::K])
        torch.nn.functional.cross_entropy(own.logits, y[k::K]).backward()  # the mean over its own
        for layer, mine in zip(own, out):
            torch.testing.assert_close(mine[k::K], layer, rtol=1e-12, atol=1e-12)
        for name, p in net.named_parameters():  # scaled back by K: each seed's own gradient
            torch.testing.assert_close(grads[name][k], p.grad, rtol=1e-10, atol=1e-12)
        for name, value in net.state_dict().items():  # running statistics of its own samples only
            torch.testing.assert_close(stacked.state_dicts()[k][name], value, rtol=1e-12, atol=1e-12)


class Float64(torch.nn.Module):
    """Runs a network in float64 inside the trainer's float32 step, so that comparing a stacked
    step with separate ones measures the algebra, not the float32 rounding of the networks (which
    differs between a grouped and a plain convolution, and flips the odd ReLU). The loss stays
    float32: with K a power of two, its means over K x and 1 x the samples differ by an exact
    factor, so the gradients at the logits are bit-identical; with K = 3 they would round apart by
    about 1e-7 per step, which the kinks of ReLU amplify to 1e-3 within three steps."""

    def __init__(self, net):
        super().__init__()
        self.net = net.double()

    def forward_all(self, x):
        return ModelOutputs(*(t.float() for t in self.net.forward_all(x.double())))

    @property
    def batch_multiple(self):
        return getattr(self.net, "batch_multiple", 1)


SETUPS = {  # strategy name -> (branches, CE branches, consistency)
    "ait": ([(0, 0), (0, 1)], None, ConsistencyConfig(weight=1.0)),
    "augmix_jsd": ([(0, 0), (0, 1), (0, 2)], [(0, 0)], ConsistencyConfig(weight=12.0, metric="jsd")),
}


def train(net, views, labels, setup, steps=3):
    """``steps`` guarded steps of the trainer (premade uint8 views (B, V, C, H, W)), SGD with
    Nesterov momentum, weight decay and a cosine schedule; returns the network."""
    branches, ce_branches, consistency = SETUPS[setup]
    trainer = BranchTrainer(
        [net], None, branches, consistency, CPU_FP32, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25), ce_branches=ce_branches
    )
    cfg = OptimConfig(lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)
    opt = build_optimizer(net, "resnet20", cfg)
    sched = build_scheduler(opt, cfg, steps_per_epoch=steps, epochs=1)
    for step in range(steps):
        trainer.step(views[step], labels[step], [opt], [sched])
    return net


@pytest.mark.parametrize("setup", sorted(SETUPS))
def test_a_stacked_training_step_equals_each_seed_trained_alone(setup):
    views_per_sample = len(SETUPS[setup][0])
    g = torch.Generator().manual_seed(1)
    seeds, per_seed = 4, 4  # a power of two: see Float64
    shape = (3, seeds * per_seed, views_per_sample, 3, 16, 16)  # 3 steps of premade uint8 views
    views = torch.randint(0, 256, shape, generator=g, dtype=torch.uint8)
    labels = torch.randint(0, 10, (3, seeds * per_seed), generator=g)
    nets = seeded_networks(k=seeds, dtype=torch.float32)
    stacked = train(Float64(StackedNetworks(copy.deepcopy(nets))), views, labels, setup).net
    for k, net in enumerate(nets):
        alone = train(Float64(net), views[:, k::seeds], labels[:, k::seeds], setup).net
        for name, value in alone.state_dict().items():
            torch.testing.assert_close(stacked.state_dicts()[k][name], value, rtol=1e-9, atol=1e-12, msg=name)


def test_unstack_gives_plain_networks_that_predict_like_the_stack():
    stacked = StackedNetworks(seeded_networks(dtype=torch.float32)).eval()
    x = torch.randn(K * 2, 3, 32, 32)
    plain = stacked.unstack()
    assert [type(net) for net in plain] == [models.CifarResNet] * K and not plain[0].training
    for k, net in enumerate(plain):
        torch.testing.assert_close(net(x[k::K]), stacked(x)[k::K], rtol=1e-5, atol=1e-5)
        fresh = models.create("resnet20", 10)
        fresh.load_state_dict(stacked.state_dicts()[k])  # a plain checkpoint of seed k
        assert fresh.training  # load_state_dict leaves the mode alone


def test_mismatched_networks_and_batches_are_refused():
    with pytest.raises(ValueError, match="network 1 .*differs from network 0"):
        StackedNetworks([models.create("resnet20", 10), models.create("resnet32", 10)])
    with pytest.raises(ValueError, match="network 1 .*differs"):
        StackedNetworks([models.create("resnet20", 10), models.create("resnet20", 100)])
    with pytest.raises(ValueError, match="at least one network"):
        StackedNetworks([])
    stacked = StackedNetworks(seeded_networks(k=2, dtype=torch.float32))
    with pytest.raises(ValueError, match="multiple of 2 samples, got 3"):
        stacked(torch.zeros(3, 3, 32, 32))


def test_a_trainer_refuses_a_view_batch_that_would_give_samples_to_the_wrong_seed():
    """4 seeds, 2 views of 6 samples: 12 images divide by 4, but view 1's sample j would go to seed
    (j + 2) % 4; the trainer checks each view's batch."""
    branches, ce_branches, consistency = SETUPS["ait"]
    stacked = StackedNetworks(seeded_networks(k=4, dtype=torch.float32))
    trainer = BranchTrainer([stacked], None, branches, consistency, CPU_FP32, (0.5,) * 3, (0.25,) * 3)
    views = torch.zeros(6, 2, 3, 16, 16, dtype=torch.uint8)
    with pytest.raises(ValueError, match="6 samples per view, but the networks need a multiple of 4"):
        trainer.loss(views, torch.zeros(6, dtype=torch.long))
    total, _ = trainer.loss(torch.zeros(8, 2, 3, 16, 16, dtype=torch.uint8), torch.zeros(8, dtype=torch.long))
    assert torch.isfinite(total)


def test_the_gradient_scaling_survives_a_deep_copy_and_frozen_parameters_stay_frozen():
    nets = seeded_networks(k=2)
    nets[0].stem[0].weight.requires_grad_(False)
    with pytest.raises(ValueError, match="network 1 .*requires_grad"):
        StackedNetworks(nets)
    nets[1].stem[0].weight.requires_grad_(False)
    stacked = copy.deepcopy(StackedNetworks(nets)).train()  # e.g. an EMA copy
    assert not stacked.stacked_state()["stem.0.weight"].requires_grad
    x, y = torch.randn(4, 3, 16, 16, dtype=torch.float64), torch.arange(4)
    torch.nn.functional.cross_entropy(stacked(x), y).backward()
    own = copy.deepcopy(nets[1]).train()
    torch.nn.functional.cross_entropy(own(x[1::2]), y[1::2]).backward()
    torch.testing.assert_close(stacked.stacked_state()["head.weight"].grad[1], own.head.weight.grad)


def test_channels_last_lays_out_each_seeds_weights_and_a_non_persistent_buffer_stays_out_of_checkpoints():
    nets = seeded_networks(k=2, dtype=torch.float32)
    for net in nets:
        net.register_buffer("scratch", torch.ones(3), persistent=False)
    stacked = StackedNetworks(nets).to(memory_format=torch.channels_last)
    weight = stacked.stacked_state()["stem.0.weight"]  # (2, 16, 3, 3, 3)
    assert weight[1].is_contiguous(memory_format=torch.channels_last)
    assert weight.flatten(0, 1).is_contiguous(memory_format=torch.channels_last)  # the grouped weight
    assert all("scratch" not in state for state in stacked.state_dicts())
    for k, net in enumerate(stacked.unstack()):
        assert torch.equal(net.scratch, torch.ones(3)) and net.stem[0].weight.dtype == torch.float32
        torch.testing.assert_close(net.stem[0].weight, nets[k].stem[0].weight)

"""Optimisers (SGD, AdamW), learning-rate schedules and the paper's weight decay per architecture."""

import copy

import pytest
import torch

import ait
from ait.config import OptimConfig
from ait.engine.optim import (
    build_optimizer,
    build_scheduler,
    default_weight_decay,
    lr_factor,
    masked_step,
    schedule_notes,
)
from ait_testutils import one_torch_thread, tiny_config


def test_step_schedule_divides_by_ten_at_the_papers_milestones():
    cfg = OptimConfig()  # milestones 80, 120
    spe = 391
    assert lr_factor(cfg, 0, spe, 160) == 1.0
    assert lr_factor(cfg, 80 * spe - 1, spe, 160) == 1.0
    assert lr_factor(cfg, 80 * spe, spe, 160) == pytest.approx(0.1)
    assert lr_factor(cfg, 120 * spe, spe, 160) == pytest.approx(0.01)


def test_cosine_with_warmup():
    cfg = OptimConfig(schedule="cosine", warmup_epochs=1)
    assert lr_factor(cfg, 0, 10, 11) == pytest.approx(0.1)
    assert lr_factor(cfg, 5, 10, 11) == pytest.approx(0.55)
    assert lr_factor(cfg, 10, 10, 11) == pytest.approx(1.0)
    assert lr_factor(cfg, 60, 10, 11) == pytest.approx(0.5)
    assert lr_factor(cfg, 110, 10, 11) == pytest.approx(0.0, abs=1e-12)


def test_scheduler_steps_per_step():
    net = torch.nn.Linear(2, 2)
    opt = build_optimizer(net, "resnet32", OptimConfig(lr=0.1, milestones=[1]))
    sched = build_scheduler(opt, OptimConfig(lr=0.1, milestones=[1]), steps_per_epoch=3, epochs=2)
    lrs = []
    for _ in range(6):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs == pytest.approx([0.1, 0.1, 0.1, 0.01, 0.01, 0.01])


def test_weight_decay_defaults_per_architecture():
    assert default_weight_decay("wrn28_10") == 5e-4
    assert default_weight_decay("resnet32") == 1e-4
    opt = build_optimizer(torch.nn.Linear(2, 2), "wrn16_4", OptimConfig())
    assert opt.param_groups[0]["weight_decay"] == 5e-4
    opt = build_optimizer(torch.nn.Linear(2, 2), "wrn16_4", OptimConfig(weight_decay=0.0))
    assert opt.param_groups[0]["weight_decay"] == 0.0


def _twins(nesterov: bool):
    """Two copies of one network with SGD: the run's fused optimiser and PyTorch's default one."""
    from ait import models

    torch.manual_seed(0)
    a, b = models.create("test_tiny", 10), models.create("test_tiny", 10)
    b.load_state_dict(a.state_dict())
    cfg = OptimConfig(lr=0.1, momentum=0.9, weight_decay=1e-4, nesterov=nesterov)
    plain = torch.optim.SGD(b.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4, nesterov=nesterov)
    return (a, build_optimizer(a, "test_tiny", cfg)), (b, plain)


def _step_both(pairs, x, y) -> None:
    """One training step of each (network, optimiser); the fused one through masked_step, not skipped."""
    for net, opt in pairs:
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(x), y).backward()
        if opt.defaults.get("fused"):
            masked_step(opt, torch.zeros(()))
        else:
            opt.step()


@pytest.mark.parametrize("nesterov", [False, True])
def test_the_fused_optimiser_equals_the_default_up_to_rounding(nesterov):
    (a, fused), (b, plain) = _twins(nesterov)
    assert fused.defaults["fused"]
    x, y = torch.randn(16, 3, 16, 16), torch.randint(0, 10, (16,))
    for _ in range(5):
        _step_both(((a, fused), (b, plain)), x, y)
    for p, q in zip(a.parameters(), b.parameters()):  # the fused kernel may round a multiply-add once
        torch.testing.assert_close(p, q, rtol=1e-6, atol=1e-7)


def test_a_skipped_step_changes_nothing_and_is_never_read_on_the_host():
    (a, fused), (b, plain) = _twins(False)

    class NoHostRead(torch.Tensor):
        def __bool__(self):
            raise AssertionError("the flag was read on the host")

    x, y = torch.randn(16, 3, 16, 16), torch.randint(0, 10, (16,))
    fused.zero_grad()
    torch.nn.functional.cross_entropy(a(x), y).backward()
    for p in a.parameters():
        p.grad.fill_(float("nan"))
    masked_step(fused, torch.ones(()).as_subclass(NoHostRead))  # skipped on the device, first step included
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert all(torch.equal(fused.state[p]["momentum_buffer"], torch.zeros_like(p)) for p in a.parameters())
    _step_both(((a, fused), (b, plain)), x, y)  # the next step is a first step as if none had been skipped
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


def test_adamw_takes_its_betas_and_a_decoupled_decay_default():
    net = torch.nn.Linear(2, 2)
    opt = build_optimizer(net, "timm:vit_tiny_patch16_224", OptimConfig(name="adamw", lr=1e-3, betas=[0.8, 0.99]))
    assert isinstance(opt, torch.optim.AdamW) and opt.defaults["fused"]
    assert opt.param_groups[0]["betas"] == (0.8, 0.99) and opt.param_groups[0]["weight_decay"] == 0.05
    assert default_weight_decay("wrn28_10", "adamw") == 0.05


def test_a_skipped_adamw_step_changes_nothing_and_the_next_one_is_a_first_step():
    # An MLP: Adam turns the rounding noise of gradients that BatchNorm cancels (a conv bias before
    # it) into whole steps, so a network with BatchNorm cannot compare two implementations.
    torch.manual_seed(0)
    a = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(48, 16), torch.nn.ReLU(), torch.nn.Linear(16, 10))
    b = copy.deepcopy(a)
    fused = build_optimizer(a, "mlp", OptimConfig(name="adamw", lr=1e-2, weight_decay=0.01))
    plain = torch.optim.AdamW(b.parameters(), lr=1e-2, weight_decay=0.01)
    x, y = torch.randn(16, 3, 4, 4), torch.randint(0, 10, (16,))
    fused.zero_grad()
    torch.nn.functional.cross_entropy(a(x), y).backward()
    for p in a.parameters():
        p.grad.fill_(float("nan"))
    masked_step(fused, torch.ones(()))
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert all(fused.state[p]["step"].item() == 0 for p in a.parameters())
    for _ in range(3):
        _step_both(((a, fused), (b, plain)), x, y)
    for p, q in zip(a.parameters(), b.parameters()):  # the skipped step left no count behind
        torch.testing.assert_close(p, q, rtol=1e-6, atol=1e-7)


def test_onecycle_follows_pytorchs_onecycle_lr():
    """The same curve as torch.optim.lr_scheduler.OneCycleLR with its defaults (and momentum kept)."""
    total, base = 50, 0.1
    net = torch.nn.Linear(2, 2)
    reference = torch.optim.SGD(net.parameters(), lr=base)
    one_cycle = torch.optim.lr_scheduler.OneCycleLR(reference, max_lr=base, total_steps=total, cycle_momentum=False)
    cfg = OptimConfig(schedule="onecycle", lr=base)
    for step in range(total):
        assert base * lr_factor(cfg, step, 10, 5) == pytest.approx(reference.param_groups[0]["lr"], rel=1e-6), step
        reference.step()
        one_cycle.step()


def test_a_warm_up_the_one_cycle_schedule_does_not_use_is_said_by_every_run_not_silently_dropped(tmp_path, capsys):
    (note,) = schedule_notes(OptimConfig(schedule="onecycle", warmup_epochs=1), epochs=5)
    assert "optim.warmup_epochs=1 is not used with optim.schedule=onecycle" in note
    assert schedule_notes(OptimConfig(schedule="onecycle"), epochs=5) == []  # nothing to say without a warm-up
    assert schedule_notes(OptimConfig(schedule="cosine", warmup_epochs=1), epochs=5) == []  # or where it is used
    cfg = tiny_config(tmp_path, "baseline", optim={"schedule": "onecycle", "warmup_epochs": 1}, train={"epochs": 1})
    for name in ("first", "second"):  # two runs of one process: each says it
        with one_torch_thread():
            ait.train({**cfg, "name": name})
        assert f"[{name}] optim.warmup_epochs=1 is not used" in capsys.readouterr().err


def test_step_milestones_the_run_never_reaches_are_said_not_silently_dropped():
    (note,) = schedule_notes(OptimConfig(schedule="step", milestones=[2, 80, 120]), epochs=10)
    assert note.startswith("optim.milestones 80, 120 are not reached in train.epochs=10")
    assert "steps down 1 of 3 times" in note
    (note,) = schedule_notes(OptimConfig(schedule="step", milestones=[10]), epochs=10)
    assert "10 is not reached" in note  # epoch 10 of 0..9 never comes
    assert schedule_notes(OptimConfig(schedule="step", milestones=[3, 6]), epochs=10) == []
    assert schedule_notes(OptimConfig(schedule="cosine", milestones=[80]), epochs=10) == []  # not a step schedule

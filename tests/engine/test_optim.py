"""Learning-rate schedules and the paper's weight decay per architecture."""

import pytest
import torch

from ait.config import OptimConfig
from ait.engine.optim import build_optimizer, build_scheduler, default_weight_decay, lr_factor


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

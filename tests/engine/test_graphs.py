"""train.cuda_graphs (ait.engine.graphs): the captured step trains as the eager one does.

The capture needs CUDA (the tests marked cuda run on a GPU machine: scripts/gpu_check.sh); here,
the parts that do not: the learning rate as a device tensor that the schedules fill, checkpoints
that hold plain numbers either way, and the refusals."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest
import torch
import yaml
from torch.utils._python_dispatch import TorchDispatchMode

from ait.config import ConfigError, load_config
from ait.engine.graphs import GraphedStep, lr_on_device
from ait.engine.optim import build_optimizer, build_scheduler
from ait.engine.run import train
from ait.engine.state import Position, TrainingState
from ait.engine.trainer import BranchTrainer
from ait.models import create
from ait.models.stacked import StackedNetworks
from ait.runtime.precision import resolve_precision
from ait.views import parse_recipe
from ait_testutils import launch, tiny_config

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


def tiny_trainer(
    device: str, seed: int = 0, recipe: str = "rp", optimizer: str = "sgd", precision: str = "fp32", seeds: int = 1
):
    """An AIT trainer of ResNet-20 (``seeds`` > 1: that many stacked into one StackedNetworks)."""
    torch.manual_seed(seed)
    dev = torch.device(device)
    net = create("resnet20", 10) if seeds == 1 else StackedNetworks([create("resnet20", 10) for _ in range(seeds)])
    net = net.to(dev)
    cfg = load_config(tiny_config_dict(optimizer))
    opt = build_optimizer(net, "resnet20", cfg.optim)
    sched = build_scheduler(opt, cfg.optim, steps_per_epoch=4, epochs=3)
    prec = resolve_precision(dev, precision, False)
    trainer = BranchTrainer(
        [net],
        [parse_recipe(r) for r in (recipe.split(",") * 2)[:2]],
        [(0, 0), (0, 1)],
        cfg.consistency,
        prec,
        [0.5] * 3,
        [0.25] * 3,
    )
    return trainer, opt, sched


def tiny_config_dict(optimizer: str = "sgd") -> dict:
    lr = 0.1 if optimizer == "sgd" else 1e-3
    return {"optim": {"name": optimizer, "lr": lr, "momentum": 0.9, "schedule": "cosine", "warmup_epochs": 1}}


def test_a_learning_rate_on_the_device_follows_the_schedule_and_trains_alike():
    runs = {}
    for on_device in (False, True):
        trainer, opt, sched = tiny_trainer("cpu")
        if on_device:
            lr_on_device(opt, torch.device("cpu"))
            lr_tensor = opt.param_groups[0]["lr"]
        gen = torch.Generator().manual_seed(0)
        data = torch.randint(0, 256, (16, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
        labels = torch.arange(16) % 10
        lrs = []
        for step in range(6):
            gen.manual_seed(step)
            trainer.step(data, labels, [opt], [sched], gen)
            lrs.append(float(opt.param_groups[0]["lr"]))
        if on_device:
            assert opt.param_groups[0]["lr"] is lr_tensor  # filled in place: a captured update reads it there
        runs[on_device] = (lrs, torch.cat([p.detach().flatten() for p in trainer.networks[0].parameters()]))
    assert runs[True][0] == pytest.approx(runs[False][0], rel=1e-6)
    torch.testing.assert_close(runs[True][1], runs[False][1], rtol=1e-4, atol=1e-5)  # lr in float32 vs double


@pytest.mark.parametrize("optimizer", ["sgd", "adamw"])
def test_checkpoints_hold_plain_learning_rates_with_or_without_a_device_tensor(optimizer):
    trainer, opt, sched = tiny_trainer("cpu", optimizer=optimizer)
    lr_on_device(opt, torch.device("cpu"))
    if optimizer == "adamw":
        opt.param_groups[0]["capturable"] = True  # as a capture leaves AdamW's groups
    opt.step()  # no gradients yet: changes nothing, as the schedule expects a step before its own
    sched.step()
    state = TrainingState(load_config({}), trainer.networks, [opt], [sched], Position(), torch.device("cpu"))
    saved = state.state_dict()
    assert isinstance(state.lr, float)
    assert all(isinstance(g["lr"], float) for g in saved["optimizers"][0]["param_groups"])
    assert all(not g.get("capturable", False) for g in saved["optimizers"][0]["param_groups"])
    assert all(isinstance(v, float) for v in saved["schedulers"][0]["_last_lr"])
    assert isinstance(opt.param_groups[0]["lr"], torch.Tensor)  # the live optimiser keeps its tensor


class OpLog(TorchDispatchMode):
    """Every ATen op run inside it, by name."""

    def __init__(self):
        super().__init__()
        self.ops: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops.append(str(func))
        return func(*args, **(kwargs or {}))


# What a CUDA graph's capture cannot hold: a read on the host (item, bool), a tensor made from Python
# data (it is copied from the host), a linalg result checked on the host, a data-dependent shape.
NOT_CAPTURABLE = ("_local_scalar_dense", "lift_fresh", "_linalg_check_errors", "nonzero", "masked_select", "unique")


@pytest.mark.parametrize("recipe", ["rp", "rp,rg", "rpgc+hue", "rrc", "rp+augmix", "rpnb", "premade", "stacked"])
def test_the_device_step_after_a_warm_up_has_nothing_a_capture_cannot_hold(recipe):
    """On the CPU, the same rule the capture enforces on a GPU: once warmed up (constants made),
    the step's device work reads nothing on the host and copies nothing from it."""
    if recipe == "premade":  # views made by a data loader, two of its three used
        cfg = load_config(tiny_config_dict())
        net = create("resnet20", 10)
        prec = resolve_precision(torch.device("cpu"), "fp32", False)
        trainer = BranchTrainer([net], None, [(0, 0), (0, 2)], cfg.consistency, prec, [0.5] * 3, [0.25] * 3)
        opt = build_optimizer(net, "resnet20", cfg.optim)
        images = torch.randint(0, 256, (8, 3, 3, 32, 32), dtype=torch.uint8)
    else:  # "stacked": two seeds as one network under vmap (ait.models.stacked)
        trainer, opt, _ = tiny_trainer("cpu", **({"seeds": 2} if recipe == "stacked" else {"recipe": recipe}))
        images = torch.randint(0, 256, (8, 3, 32, 32), dtype=torch.uint8)
    labels, gen = torch.arange(8) % 10, torch.Generator().manual_seed(0)
    trainer.step(images, labels, [opt], generator=gen)  # the warm-up
    opt.zero_grad(set_to_none=False)
    with OpLog() as log:
        trainer.device_step(images, labels, [opt], gen, grad_norm=True)
    assert len(log.ops) > 100  # the whole step ran under the log
    assert not [op for op in log.ops if any(word in op for word in NOT_CAPTURABLE)]


def test_the_captured_step_refuses_a_batch_off_cuda():
    trainer, opt, _ = tiny_trainer("cpu")
    with pytest.raises(ValueError, match="CUDA device"):
        GraphedStep(trainer)(torch.zeros(4, 3, 32, 32, dtype=torch.uint8), torch.zeros(4, dtype=torch.long), [opt])


def test_cuda_graphs_with_compile_is_refused_naming_the_key():
    with pytest.raises(ConfigError, match="train.cuda_graphs"):
        load_config({"train": {"cuda_graphs": True, "compile": True}})


def test_a_cpu_run_with_cuda_graphs_exits_2_and_writes_nothing(tmp_path):
    cfg = tiny_config(tmp_path, "ait")
    cfg["train"].update(cuda_graphs=True, device="cpu")
    cfg["strategy"]["networks"] = ["resnet20"]  # a zoo model: the subprocess has no test networks
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(cfg))
    done = subprocess.run([sys.executable, "-m", "ait", "train", str(path)], capture_output=True, text=True)
    assert done.returncode == 2
    assert "train.cuda_graphs: CUDA graphs need a CUDA device, but this run trains on cpu" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists()


# --- on a GPU ------------------------------------------------------------------------------------


@needs_cuda
@pytest.mark.parametrize(
    "recipe, optimizer, precision, seeds",
    [
        ("rp", "sgd", "fp32", 1),
        ("rp", "sgd", "bf16", 1),
        ("rp", "adamw", "fp32", 1),
        ("rp,rg", "sgd", "fp32", 1),
        ("rpgc+hue", "sgd", "fp32", 1),
        ("rrc", "sgd", "fp32", 1),
        ("rp+augmix", "sgd", "fp32", 1),
        ("rpnb", "sgd", "fp32", 1),
        ("rp", "sgd", "fp32", 2),  # two seeds stacked under vmap
    ],
)  # every kind of view op, both optimisers, autocast inside the capture
def test_replayed_steps_train_as_eager_steps_do_with_a_partial_batch_between(recipe, optimizer, precision, seeds):
    """Warm-up, capture, replays, an eager partial batch, replays: the weights and every step's
    statistics match the eager trainer's (the views draw the same numbers from the registered
    generator), for views of every kind (no host copy in any of them once warmed up)."""
    results = {}
    for graphed in (False, True):
        trainer, opt, sched = tiny_trainer("cuda", recipe=recipe, optimizer=optimizer, precision=precision, seeds=seeds)
        step = GraphedStep(trainer) if graphed else trainer.step
        gen = torch.Generator(device="cuda")
        data = torch.randint(0, 256, (40, 3, 32, 32), dtype=torch.uint8, device="cuda")
        labels = torch.arange(40, device="cuda") % 10
        sizes = [16] * 6 + [8] + [16] * 3  # the 7th batch is a partial one
        ces, start = [], 0
        for k, n in enumerate(sizes):
            idx = torch.arange(start, start + n, device="cuda") % 40
            start += n
            gen.manual_seed(k)
            stats = step(data[idx], labels[idx], [opt], [sched], gen)
            ces.append(stats.ce.clone())
        if graphed:
            assert step.replays == len(sizes) - 3 - 1  # 3 warm-up steps, one partial batch
        results[graphed] = (
            torch.stack(ces),
            torch.cat([p.detach().flatten() for p in trainer.networks[0].parameters()]),
        )
    tol = {"rtol": 1e-4, "atol": 1e-5} if precision == "fp32" else {"rtol": 2e-2, "atol": 2e-3}  # bf16 rounds
    torch.testing.assert_close(results[True][0], results[False][0], **tol)
    torch.testing.assert_close(results[True][1], results[False][1], **tol)


@needs_cuda
def test_a_nonfinite_replayed_step_changes_nothing_and_is_named():
    from ait.engine.trainer import NonFiniteLossError

    trainer, opt, sched = tiny_trainer("cuda")
    step = GraphedStep(trainer, warmup_steps=1)
    gen = torch.Generator(device="cuda")
    data = torch.randint(0, 256, (16, 3, 32, 32), dtype=torch.uint8, device="cuda")
    labels = torch.arange(16, device="cuda") % 10
    for k in range(3):
        gen.manual_seed(k)
        step(data, labels, [opt], [sched], gen)
    first = next(trainer.networks[0].parameters())
    with torch.no_grad():
        first.view(-1)[0] = float("nan")  # in place: the graph still holds the tensor
    before = [t.detach().clone() for t in trainer.networks[0].state_dict().values()]
    momentum = [opt.state[p]["momentum_buffer"].clone() for p in trainer.networks[0].parameters()]
    assert step.replays > 0
    with pytest.raises(NonFiniteLossError, match="non-finite"):
        step(data, labels, [opt], [sched], gen)
    after = list(trainer.networks[0].state_dict().values())
    for b, a in zip(before, after):  # weights and BatchNorm statistics: untouched by the masked update
        torch.testing.assert_close(a, b, equal_nan=True)
    for p, m in zip(trainer.networks[0].parameters(), momentum):
        torch.testing.assert_close(opt.state[p]["momentum_buffer"], m, equal_nan=True)


@needs_cuda
def test_a_run_with_cuda_graphs_learns_as_the_eager_run_and_resumes_after_sigterm(tmp_path, capfd):
    from test_resume import read_metrics, resumable_config, wait_for_mid_run_checkpoint

    finals = {}
    for graphs in (False, True):
        cfg = resumable_config(tmp_path / f"ref{graphs}", device="cuda", cuda_graphs=graphs, num_threads=None)
        finals[graphs] = train(cfg, run_dir=tmp_path / f"ref{graphs}" / "run")["networks"][0]["final_top1"]
        captured = "train.cuda_graphs: step captured for batches of (16, 3, 32, 32)" in capfd.readouterr().err
        assert captured == graphs  # the run replays its steps, not a silent eager fallback
    assert abs(finals[True] - finals[False]) <= 2.0, finals
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(resumable_config(tmp_path, device="cuda", cuda_graphs=True, num_threads=None)))
    run = tmp_path / "run"
    proc = launch(path, run)
    wait_for_mid_run_checkpoint(run, proc)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "step captured" in err
    summary = train(path, run_dir=run)  # the checkpoint's plain learning rates load; a new capture follows
    assert len(read_metrics(run)) == 4
    assert abs(summary["networks"][0]["final_top1"] - finals[True]) <= 2.0, (summary, finals)


def test_a_torch_without_graph_safe_generators_is_refused_before_the_run(monkeypatch):
    from ait.engine.graphs import check_cuda_graphs

    cfg = load_config({"train": {"cuda_graphs": True}})
    check_cuda_graphs(cfg, torch.device("cuda"), world_size=1)  # this torch can
    with pytest.raises(ConfigError, match="trains one process, but this run has 2"):
        check_cuda_graphs(cfg, torch.device("cuda"), world_size=2)
    monkeypatch.setattr(torch.cuda, "CUDAGraph", type("CUDAGraph", (), {}))  # as in torch before 2.4
    with pytest.raises(ConfigError, match="cannot capture the views' generator"):
        check_cuda_graphs(cfg, torch.device("cuda"), world_size=1)

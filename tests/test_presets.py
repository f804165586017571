"""Every shipped preset loads, and runs one training step (on synthetic data of the same shape)."""

from pathlib import Path

import pytest
import torch

import ait
from ait.config import load_config
from ait_testutils import load_script, make_image_folder

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
PRESETS = sorted(CONFIGS.glob("*/*.yaml"))


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory):
    """A tiny ImageNet-layout folder standing in for ImageNet (3 classes, 40x48-px images)."""
    return make_image_folder(tmp_path_factory.mktemp("imagenet"), train_per_class=2, val_per_class=1)


@pytest.fixture
def keep_num_threads():
    previous = torch.get_num_threads()
    yield
    torch.set_num_threads(previous)


def test_presets_exist_for_every_experiment_of_the_paper():
    names = {p.stem for p in PRESETS}
    for prefix in (
        "table1_cifar10",
        "table1_cifar100",
        "table1_imagenet_resnet18",
        "table1_imagenet_resnet50",
        "table2_",
        "table3_",
        "table4_imagenet_resnet18_frac10",
        "table4_imagenet_resnet18_frac50",
        "table5_",
        "fig3_",
        "fig4_",
    ):
        assert any(n.startswith(prefix) for n in names), prefix
    assert len(list((CONFIGS / "cpu").glob("*.yaml"))) >= 10


def test_presets_are_up_to_date_with_their_generator():
    gen = load_script(CONFIGS / "make_presets.py", "make_presets")
    expected = {
        **{f"paper/{k}": v for k, v in gen.paper_presets().items()},
        **{f"cpu/{k}": v for k, v in gen.cpu_presets().items()},
        **{f"smoke/{k}": v for k, v in gen.smoke_presets().items()},
    }
    found = {f"{p.parent.name}/{p.stem}" for p in PRESETS}
    assert found == set(expected), "re-run: python configs/make_presets.py"
    for key, data in expected.items():
        assert load_config(CONFIGS / f"{key}.yaml") == load_config(data), key


@pytest.mark.parametrize("path", PRESETS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_preset_runs_one_step(path, tmp_path, image_folder, keep_num_threads):
    cfg = load_config(path)
    s = cfg.strategy
    views = s.definition.views_per_network(len(s.networks), len(s.views))  # AIT, AugMix: every view of a sample
    if cfg.data.dataset == "imagefolder":
        # Same strategy, networks, views, fraction and losses; a tiny folder at 32 px instead of ImageNet.
        # One thread: these ImageNet ResNets are several times slower on a busy 2-core machine with two.
        data = [f"data.root={image_folder}", "data.image_size=32", "data.workers=0", "train.num_threads=1"]
    else:
        # Same strategy, networks, views and losses; tiny synthetic data of CIFAR shape instead of the real set.
        data = ["data.dataset=synthetic", "data.synthetic_size=40", "data.label_noise=0.0"]
    summary = ait.train(
        path,
        overrides=[
            *data,
            f"train.batch_size={2 * views}",
            "train.epochs=1",
            "train.max_steps_per_epoch=1",
            "train.progress=none",
            "train.checkpoint=false",
            "train.eval_batch_size=10",
            f"out_dir={tmp_path}",
        ],
        run_dir=tmp_path / "run",
    )
    assert summary["total_steps"] == 1
    assert len(summary["networks"]) == len(cfg.strategy.networks)

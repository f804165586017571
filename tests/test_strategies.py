"""The strategy table: each entry's branches, shapes, samples per step and CE branches, and that a
new entry needs nothing outside ait.strategies to train, be validated and be reported."""

from __future__ import annotations

import json

import pytest

import ait
from ait import strategies
from ait.config import ConfigError, load_config
from ait.report.groups import base_label, group_runs
from ait.report.records import load_runs
from ait.strategies import STRATEGIES, Strategy
from ait_testutils import tiny_config


@pytest.mark.parametrize(
    "name, networks, views, branches, per_network",
    [
        ("baseline", 1, 1, [(0, 0)], 1),
        ("ait", 1, 3, [(0, 0), (0, 1), (0, 2)], 3),
        ("dml", 3, 1, [(0, 0), (1, 0), (2, 0)], 1),
        ("multi_ait", 2, 2, [(0, 0), (1, 1)], 1),
    ],
)
def test_each_entry_pairs_networks_and_views(name, networks, views, branches, per_network):
    entry = strategies.get(name)
    assert entry.accepts(networks, views)
    assert entry.branches(networks, views) == branches
    assert entry.ce_branches(networks, views) == branches  # the paper: CE on every branch
    assert entry.views_per_network(networks, views) == per_network
    assert entry.samples_per_step(120, networks, views) == 120 // per_network


@pytest.mark.parametrize(
    "name, networks, views", [("baseline", 1, 2), ("ait", 1, 1), ("ait", 2, 2), ("dml", 1, 1), ("multi_ait", 2, 3)]
)
def test_each_entry_refuses_other_shapes_with_its_own_words(name, networks, views, tmp_path):
    entry = strategies.get(name)
    assert not entry.accepts(networks, views)
    cfg = {"strategy": {"name": name, "networks": ["resnet20"] * networks, "views": ["rp"] * views}}
    with pytest.raises(ConfigError, match=f"strategy: expected {entry.shape} for '{name}'"):
        load_config(cfg)


def test_unknown_strategy_lists_the_table():
    with pytest.raises(KeyError, match="baseline, ait, dml, multi_ait"):
        strategies.get("simclr")
    with pytest.raises(ConfigError, match="'simclr' is not one of baseline, ait, dml, multi_ait"):
        load_config({"strategy": {"name": "simclr"}})


def test_batch_size_must_split_into_the_views_of_a_sample():
    load_config({"strategy": {"name": "ait", "views": ["rp", "rp", "rp"]}, "train": {"batch_size": 126}})
    with pytest.raises(ConfigError, match=r"train.batch_size: expected a multiple of the number of views \(3\)"):
        load_config({"strategy": {"name": "ait", "views": ["rp", "rp", "rp"]}, "train": {"batch_size": 128}})


# A strategy the paper does not have: AIT whose CE sees only the first view (the others are
# trained by the consistency loss alone). Added here and nowhere else.
FIRST_VIEW_CE = Strategy(
    "ait_first_ce",
    "AIT (CE on view 0)",
    "1 network and at least 2 views",
    accepts=lambda n, v: n == 1 and v >= 2,
    pair=lambda n, v: [(0, j) for j in range(v)],
    ce=lambda n, v: [(0, 0)],
)


def test_a_new_entry_trains_is_validated_and_reported_without_touching_other_modules(tmp_path, monkeypatch):
    monkeypatch.setitem(STRATEGIES, FIRST_VIEW_CE.name, FIRST_VIEW_CE)
    cfg = tiny_config(tmp_path, "ait", name="first_ce", train={"epochs": 2})
    cfg["strategy"]["name"] = FIRST_VIEW_CE.name
    with pytest.raises(ConfigError, match="1 network and at least 2 views"):
        load_config({**cfg, "strategy": {**cfg["strategy"], "views": ["rp"]}})
    summary = ait.train(cfg)
    assert summary["strategy"] == FIRST_VIEW_CE.name and summary["steps_per_epoch"] == 20  # 320 samples, 16 a step
    records = [json.loads(line) for line in (tmp_path / "runs/first_ce/seed0/metrics.jsonl").read_text().splitlines()]
    assert records[-1]["train_consistency"] > 0
    runs, skipped, _ = load_runs([tmp_path / "runs"])
    assert not skipped and group_runs(runs)[0].label.startswith("AIT (CE on view 0) λ=1")
    assert base_label(runs[0].config) == group_runs(runs)[0].label


def test_ce_on_a_subset_of_views_is_the_ce_of_those_views_only():
    import torch

    from ait import models
    from ait.config import ConsistencyConfig
    from ait.engine.trainer import BranchTrainer
    from ait.runtime.precision import resolve_precision
    from ait.views import parse_recipe

    torch.manual_seed(0)
    net = models.create("test_tiny", 10).eval()  # batch statistics fixed: each image's logits on their own
    cpu = resolve_precision(torch.device("cpu"), "fp32", False)
    recipes = [parse_recipe("rh"), parse_recipe("rp")]
    images = torch.randint(0, 256, (8, 3, 32, 32), dtype=torch.uint8)
    labels = torch.randint(0, 10, (8,))
    common = (recipes, [(0, 0), (0, 1)], ConsistencyConfig(weight=0.0), cpu, (0.5,) * 3, (0.25,) * 3)
    every = BranchTrainer([net], *common)
    first = BranchTrainer([net], *common, ce_branches=[(0, 0)])
    views = every.make_views(images, torch.Generator().manual_seed(1))
    with torch.no_grad():
        _, all_stats = every.loss(images, labels, torch.Generator().manual_seed(1))
        _, first_stats = first.loss(images, labels, torch.Generator().manual_seed(1))
        expected = torch.nn.functional.cross_entropy(net(views[0]), labels)
    torch.testing.assert_close(first_stats.ce[0], expected)
    assert not torch.isclose(all_stats.ce[0], first_stats.ce[0])
    assert first_stats.images == all_stats.images == [16]  # both views are still trained on

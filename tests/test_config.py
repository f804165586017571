"""Typed config: defaults, YAML, dotted overrides, strict keys with suggestions, validation."""

import pytest
import yaml

from ait.config import Config, ConfigError, apply_override, config_from_dict, dump_yaml, load_config


def test_defaults_are_the_papers_ait_setting():
    cfg = load_config()
    assert cfg.strategy.name == "ait" and cfg.strategy.views == ["rp", "rp"]
    assert cfg.consistency.weight == 1.0 and cfg.consistency.metric == "kl" and cfg.consistency.layer == "logits"
    assert (cfg.optim.lr, cfg.optim.momentum, cfg.optim.milestones) == (0.1, 0.9, [80, 120])
    assert (cfg.train.epochs, cfg.train.batch_size) == (160, 128)


def test_yaml_round_trip(tmp_path):
    cfg = load_config(overrides=["consistency.weight=3", "strategy.views=rp,rg"])
    path = tmp_path / "c.yaml"
    path.write_text(dump_yaml(cfg))
    again = load_config(path)
    assert again == cfg
    assert yaml.safe_load(path.read_text())["strategy"]["views"] == ["rp", "rg"]


def test_overrides_parse_values_as_yaml():
    cfg = load_config(
        overrides=[
            "consistency.weight=3",
            "optim.milestones=[10, 20]",
            "train.num_threads=null",
            "consistency.detach_target=false",
            "name=my run",
        ]
    )
    assert cfg.consistency.weight == 3.0 and isinstance(cfg.consistency.weight, float)
    assert cfg.optim.milestones == [10, 20]
    assert cfg.train.num_threads is None
    assert cfg.consistency.detach_target is False
    assert cfg.name == "my run"


@pytest.mark.parametrize(
    "override, message",
    [
        ("consistency.wieght=3", "did you mean 'weight'"),
        ("consistancy.weight=3", "did you mean 'consistency'"),
        ("train.epochs", "expected KEY=VALUE"),
        ("seed.x=1", "has no sub-keys"),
        ("train.progress=off", "quote the word"),
    ],
)
def test_bad_overrides_are_named(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(overrides=[override])


def test_misspelt_key_in_file_names_file_and_suggests(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("optim:\n  learning_rate: 0.1\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert "bad.yaml" in str(err.value) and "'optim.learning_rate'" in str(err.value)
    assert "lr" in str(err.value)


@pytest.mark.parametrize(
    "data, message",
    [
        ({"train": {"epochs": "ten"}}, "train.epochs: expected an integer"),
        ({"train": {"epochs": 1.5}}, "train.epochs: expected an integer"),
        ({"consistency": {"detach_target": "yes"}}, "expected true or false"),
        ({"strategy": {"name": "mutual"}}, "strategy.name: 'mutual' is not one of baseline, ait, dml, multi_ait"),
        ({"strategy": {"networks": ["resnet33"]}}, r"strategy.networks\[0\]: 'resnet33' is not one of"),
        ({"strategy": {"views": ["rq", "rp"]}}, r"strategy.views\[0\]"),
        ({"strategy": {"name": "ait", "views": ["rp"]}}, "1 network and at least 2 views"),
        (
            {"strategy": {"name": "multi_ait", "networks": ["resnet20", "resnet20"], "views": ["rp"]}},
            "one view per network",
        ),
        ({"strategy": {"name": "ait", "views": ["rp", "rp", "rp"]}}, "multiple of the number of views"),
        ({"consistency": {"layer": "pool"}}, "feature_map, feature, logits"),
        ({"consistency": {"metric": "cosine"}}, "kl, euclidean"),
        ({"data": {"label_noise": 1.5}}, "data.label_noise"),
        ({"data": {"dataset": "npz"}}, "data.train_file"),
        ({"optim": {"milestones": [120, 80]}}, "increasing"),
        ({"train": {"precision": "fp16"}}, "train.precision"),
        ([1, 2], "expected a mapping"),
    ],
)
def test_invalid_values_are_rejected_with_the_key(data, message):
    with pytest.raises(ConfigError, match=message):
        config_from_dict(data) if isinstance(data, dict) else load_config({"data": data})


def test_views_written_as_one_string():
    cfg = config_from_dict({"strategy": {"views": "rp, rg"}})
    assert cfg.strategy.views == ["rp", "rg"]


@pytest.mark.parametrize(
    "name, networks, views, branches",
    [
        ("baseline", ["resnet20"], ["rp"], [(0, 0)]),
        ("ait", ["resnet20"], ["rp", "rg", "rc"], [(0, 0), (0, 1), (0, 2)]),
        ("dml", ["resnet20", "resnet32"], ["rp"], [(0, 0), (1, 0)]),
        ("multi_ait", ["resnet20", "resnet32"], ["rp", "rg"], [(0, 0), (1, 1)]),
    ],
)
def test_branches_of_each_strategy(name, networks, views, branches):
    cfg = config_from_dict(
        {"strategy": {"name": name, "networks": networks, "views": views}, "train": {"batch_size": 126}}
    )
    assert cfg.strategy.branches() == branches


def test_apply_override_creates_missing_sections():
    data = {}
    apply_override(data, "train.epochs=5")
    assert data == {"train": {"epochs": 5}}
    assert isinstance(Config(), Config)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="nope.yaml"):
        load_config(tmp_path / "nope.yaml")


def test_config_differences_fill_defaults_and_list_changed_keys():
    from ait.config import config_differences

    current = load_config(overrides=["consistency.weight=3"]).to_dict()
    older = load_config().to_dict()
    del older["train"]["sync_batchnorm"]  # saved before the key existed: its default applies
    assert config_differences(older, current) == ["consistency.weight: 1.0 -> 3.0"]
    assert config_differences(older, current, ignore=("consistency.weight",)) == []

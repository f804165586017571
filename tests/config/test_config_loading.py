"""Reading a config from plain data, files and overrides: types coerced, keys named, suggestions."""

import pytest
import yaml

from ait.config import (
    ConfigError,
    apply_override,
    config_from_dict,
    dump_yaml,
    load_config,
)


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
        (
            "consistency.wieght=3",
            r"^override 'consistency.wieght=3': unknown config key 'consistency.wieght' "
            r"\(did you mean 'weight'\?\); valid keys here: weight, ",
        ),
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


def test_views_written_as_one_string():
    cfg = config_from_dict({"strategy": {"views": "rp, rg"}})
    assert cfg.strategy.views == ["rp", "rg"]


def test_apply_override_creates_missing_sections():
    data = {}
    apply_override(data, "train.epochs=5")
    assert data == {"train": {"epochs": 5}}


def test_missing_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="nope.yaml"):
        load_config(tmp_path / "nope.yaml")


@pytest.mark.parametrize("written, value", [("1e-3", 0.001), ("5E-4", 0.0005), ("1_000", 1000.0), (".5", 0.5)])
def test_every_form_of_number_a_user_writes_is_read(written, value, tmp_path):
    path = tmp_path / "cfg.yaml"
    path.write_text(f"optim:\n  lr: {written}\n  weight_decay: {written}\ntrain:\n  epochs: 1e1\n")
    cfg = load_config(path)
    assert cfg.optim.lr == value and cfg.optim.weight_decay == value and cfg.train.epochs == 10


def test_models_options_are_typed_and_reach_every_name_by_override():
    cfg = load_config(
        {"strategy": {"networks": ["timm:test_vit"]}},
        [
            "models.timm:test_vit.kwargs.img_size=32",
            "models.timm:test_vit.kwargs={img_size: 32, drop_path_rate: 0.1}",
            "models.timm:test_vit.pretrained=true",
        ],
    )
    options = cfg.models["timm:test_vit"]
    assert options.kwargs == {"img_size": 32, "drop_path_rate": 0.1} and options.pretrained
    assert config_from_dict(cfg.to_dict()).models == cfg.models  # saved and read back as plain data
    cfg = load_config({"strategy": {"networks": ["resnet20"]}}, ["models.resnet20.weights=start.safetensors"])
    assert cfg.models["resnet20"].weights == "start.safetensors" and not cfg.models["resnet20"].replace_head

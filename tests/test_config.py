"""Typed config: defaults, YAML, dotted overrides, strict keys with suggestions, validation."""

import contextlib
import dataclasses
import io
import math
import typing
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from ait.cli import main
from ait.config import (
    Config,
    ConfigError,
    Range,
    apply_override,
    config_from_dict,
    dump_yaml,
    load_config,
    resolve_data_paths,
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
        (
            {"strategy": {"networks": ["resnet33"]}},
            r"strategy.networks\[0\]: unknown model 'resnet33'. Did you mean 'resnet32'",
        ),
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
        ({"data": {"dataset": "hf"}}, "data.root: expected a folder written by DatasetDict.save_to_disk"),
        ({"data": {"dataset": "hf", "root": "d", "test_split": "train"}}, "data.test_split: expected a split other"),
        ({"data": {"dataset": "hf", "root": "d", "train_split": ""}}, "data.train_split: expected a non-empty name"),
        ({"data": {"dataset": "hf", "root": "d", "label_column": ""}}, "data.label_column: expected a non-empty"),
        ({"data": {"dataset": "hf", "root": "d", "image_column": ""}}, "data.image_column: expected null or a column"),
        ({"data": {"dataset": "hf", "root": "d", "image_column": "label"}}, "data.label_column: expected a column"),
        ({"data": {"dataset": "hf", "root": "d", "image_column": 3}}, "data.image_column: expected"),
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


# ----------------------------------------------------------------------------------------------
# Every numeric key has a range, and every value outside it is refused at load time, key named.


def numeric_keys() -> list[tuple[str, Any, Range | None]]:
    """(dotted key, annotation, declared Range) of every int / float / list-of-int key of the schema."""
    out = []

    def walk(cls, prefix):
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            tp, key = hints[f.name], f"{prefix}{f.name}"
            if dataclasses.is_dataclass(tp):
                walk(tp, f"{key}.")
            elif {int, float} & ({tp} | set(typing.get_args(tp))):
                out.append((key, tp, f.metadata.get("range")))

    walk(Config, "")
    return out


def is_integer(tp) -> bool:
    return tp is int or int in typing.get_args(tp)


def outside(valid: Range, integer: bool) -> st.SearchStrategy:
    """Values a key with range ``valid`` must refuse."""
    options = []
    if valid.lo is not None:
        lo = valid.lo if valid.lo_open else valid.lo - (1 if integer else 1e-9 * max(1.0, abs(valid.lo)))
        options.append(st.integers(max_value=math.floor(lo)) if integer else st.floats(max_value=lo, allow_nan=False))
    if valid.hi is not None:
        hi = valid.hi if valid.hi_open else valid.hi + (1 if integer else 1e-9 * max(1.0, abs(valid.hi)))
        options.append(st.integers(min_value=math.ceil(hi)) if integer else st.floats(min_value=hi, allow_nan=False))
    options.append(st.sampled_from([math.nan, math.inf, -math.inf]))
    return st.one_of(options)


KEYS = numeric_keys()


def test_every_numeric_key_declares_a_range_that_holds_its_default():
    missing = [key for key, _, valid in KEYS if valid is None]
    assert not missing, f"numeric config keys without a range: {missing}"
    defaults = Config()
    for key, _, valid in KEYS:
        value = defaults
        for part in key.split("."):
            value = getattr(value, part)
        for v in value if isinstance(value, list) else [value]:
            assert v is None or valid.holds(v), (key, v)


@pytest.mark.parametrize("key, tp, valid", KEYS, ids=[k for k, _, _ in KEYS])
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_out_of_range_values_are_refused_with_the_key_before_training(key, tp, valid, data, tmp_path_factory):
    value = data.draw(outside(valid, is_integer(tp)), label=key)
    text = f"[{value!r}]" if typing.get_origin(tp) is list else repr(value)
    tmp = tmp_path_factory.mktemp("cfg")
    path = tmp / "cfg.yaml"
    path.write_text(yaml.safe_dump({"data": {"dataset": "synthetic"}, "out_dir": str(tmp / "runs")}))
    with contextlib.redirect_stderr(io.StringIO()) as stderr:
        assert main(["train", str(path), "--set", f"{key}={text}"]) == 2
    err = stderr.getvalue()
    assert key in err and "Traceback" not in err, err
    assert not (tmp / "runs").exists()


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


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["models.resnet32.weights=w.pt"], "models.resnet32: expected a name of strategy.networks"),
        (["models.resnet20.pretrained=true"], "models.resnet20.pretrained: only timm:NAME models"),
        (["models.resnet20.weights=w.ckpt"], r"models.resnet20.weights: expected a .safetensors, .pt, .pth file"),
        (["models.resnet20.replace_head=true"], "models.resnet20.replace_head: expected models.resnet20.weights"),
        (["models.resnet20.kwargs.when=2020-01-01"], "models.resnet20.kwargs.when: expected plain data"),
        (["models.resnet20.kwargs.x=.nan"], "models.resnet20.kwargs.x: expected a finite number"),
        (["models.resnet20.colour=red"], "unknown config key 'models.resnet20.colour'"),
        (["models=[1, 2]"], "models: expected a mapping"),
        (["strategy.networks=[timm:resnet181]"], r"strategy.networks\[0\]: 'timm:resnet181': timm has no"),
        (["strategy.networks=[my-nets:make]"], r"strategy.networks\[0\]: model name 'my-nets:make': expected"),
        (["optim.name=lamb"], "optim.name: 'lamb' is not one of sgd, adamw"),
        (["optim.betas=[0.9]"], r"optim.betas: expected two numbers \[beta1, beta2\]"),
        (["optim.nesterov=true", "optim.momentum=0"], "optim.nesterov: expected false unless optim.name is sgd with"),
        (["optim.nesterov=true", "optim.name=adamw"], "optim.nesterov: expected false unless optim.name is sgd with"),
        (["train.label_smoothing=1"], r"train.label_smoothing: expected a finite number in \[0, 1\)"),
    ],
)
def test_bad_model_and_optimiser_keys_are_named(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config({"strategy": {"networks": ["resnet20"], "views": ["rp", "rp"]}}, overrides)


def test_a_validation_split_of_an_image_folder_is_refused_until_it_exists():
    with pytest.raises(ConfigError, match="data.val_fraction: expected 0 for data.dataset=imagefolder"):
        load_config({"data": {"dataset": "imagefolder", "root": "data/imagenet", "val_fraction": 0.1}})


def test_a_hugging_face_dataset_names_its_folder_splits_and_columns(tmp_path, monkeypatch):
    d = load_config({"data": {"dataset": "hf", "root": "data/cifar10_hf"}}).data
    assert (d.image_column, d.label_column, d.train_split, d.test_split) == (None, "label", "train", "test")
    cfg = load_config(
        {"data": {"dataset": "hf", "root": "hub/beans"}}, ["data.test_split=validation", "data.image_column=image"]
    )
    assert (cfg.data.test_split, cfg.data.image_column) == ("validation", "image")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("AIT_DATA", raising=False)
    assert resolve_data_paths(cfg).data.root == str(tmp_path / "hub" / "beans")  # resolved like every data path

"""What values mean together: each refused with its key named, before anything runs."""

import pytest

from ait.config import (
    ConfigError,
    config_from_dict,
    load_config,
    resolve_data_paths,
)


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

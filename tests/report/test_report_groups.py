"""Grouping runs by configuration (ait.report.groups)."""

from __future__ import annotations

from ait.report.groups import dataset_label, group_key


def config(dataset: str, root: str) -> dict:
    return {"seed": 0, "data": {"dataset": dataset, "root": root}, "strategy": {"name": "ait"}}


def test_the_folder_of_a_hugging_face_dataset_tells_runs_apart_where_a_cifar_folder_does_not():
    # CIFAR-10 is CIFAR-10 wherever its folder lies; two Hugging Face folders are two datasets.
    assert group_key(config("cifar10", "/a/cifar")) == group_key(config("cifar10", "/b/cifar"))
    assert group_key(config("hf", "/data/beans")) != group_key(config("hf", "/data/cifar10_hf"))
    assert group_key(config("hf", "/data/beans")) == group_key({**config("hf", "/data/beans"), "seed": 1})
    assert dataset_label(config("hf", "/data/beans")) == "hf:beans"


def test_two_image_folders_are_two_datasets_not_seeds_of_one():
    imagenet100, imagenet = config("imagefolder", "/data/imagenet100"), config("imagefolder", "/data/imagenet")
    assert group_key(imagenet100) != group_key(imagenet)
    assert group_key(imagenet100) == group_key({**imagenet100, "seed": 1})
    assert (dataset_label(imagenet100), dataset_label(imagenet)) == ("imagefolder:imagenet100", "imagefolder:imagenet")


def machine_run(root, seed: int, device: str, data_dir: str, fingerprint: str | None):
    """A fake finished run trained on ``device`` from npz files under ``data_dir``."""
    import json

    import yaml
    from report_testutils import make_run

    run = make_run(root, "claim1", seed, 80.0 + seed, strategy="baseline")
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    cfg["train"]["device"] = device
    cfg["data"].update(dataset="npz", train_file=f"{data_dir}/train-20000.npz", test_file=f"{data_dir}/test.npz")
    (run / "config.yaml").write_text(yaml.safe_dump(cfg))
    summary = json.loads((run / "summary.json").read_text())
    (run / "summary.json").write_text(json.dumps({**summary, "device": device}))
    if fingerprint:
        (run / "env.json").write_text(json.dumps({"fingerprints": {"data": {"train": fingerprint, "test": "t"}}}))
    return run


def test_pool_devices_joins_the_seeds_of_one_config_run_on_two_machines_with_the_same_data(tmp_path):
    from ait.report import group_runs, load_run

    runs = [
        machine_run(tmp_path / "cpu", 0, "cpu", "/work/shared/data/cifar10", "abc"),
        machine_run(tmp_path / "gpu", 1, "cuda", "/gpu/data/cifar10", "abc"),
        machine_run(tmp_path / "gpu", 2, "cuda:0", "/gpu/data/cifar10", "abc"),
        machine_run(tmp_path / "other", 3, "cuda", "/gpu/data/cifar10", "other data"),  # same paths, other data
        machine_run(tmp_path / "unknown", 4, "cuda", "/elsewhere/cifar10", None),  # no fingerprint: kept apart
        machine_run(tmp_path / "unknown2", 5, "cuda", "/fourth/cifar10", None),
    ]
    records = [load_run(r) for r in runs]
    assert len(group_runs(records)) == 5  # device and paths tell them apart by default
    pooled = group_runs(records, pool_devices=True)
    assert sorted(len(g.runs) for g in pooled) == [1, 1, 1, 3]
    three = next(g for g in pooled if len(g.runs) == 3)
    assert three.label.endswith("pooled: cpu 1, cuda 2") and three.stat().values == [80.0, 81.0, 82.0]
    assert not any("pooled" in g.label for g in pooled if len(g.runs) == 1)
    assert len({g.label for g in pooled}) == len(pooled) and not any(g.label.endswith(" · ") for g in pooled)
    assert all("data fingerprint=" in g.label for g in pooled if len(g.runs) == 1)  # what tells them apart


def test_report_command_pools_devices_when_asked(tmp_path, capsys):
    from ait.cli import main

    machine_run(tmp_path / "runs" / "cpu", 0, "cpu", "/a/cifar10", "abc")
    machine_run(tmp_path / "runs" / "gpu", 1, "cuda", "/b/cifar10", "abc")
    for flag, groups in (([], 2), (["--pool-devices"], 1)):
        out = tmp_path / f"out{len(flag)}"
        assert main(["report", str(tmp_path / "runs"), "--out", str(out), *flag]) == 0
        text = (out / "report.md").read_text()
        assert f"2 runs in {groups} configurations" in text
        assert ("Pooled across machines" in text) == bool(flag) and ("pooled: cpu 1, cuda 1" in text) == bool(flag)


def test_a_model_option_set_in_one_config_names_both_groups_by_that_option_alone(tmp_path):
    import yaml
    from report_testutils import make_run

    from ait.report import group_runs, load_run

    plain = make_run(tmp_path, "plain", 0, 70.0, strategy="baseline")
    split = make_run(tmp_path, "split", 0, 71.0, strategy="baseline")
    cfg = yaml.safe_load((split / "config.yaml").read_text())
    cfg["models"] = {"resnet20": {"split_bn": True}}  # the other config has no models entry: the defaults
    (split / "config.yaml").write_text(yaml.safe_dump(cfg))
    labels = sorted(g.label for g in group_runs([load_run(plain), load_run(split)]))
    assert [label.rsplit(" · ", 1)[1] for label in labels] == [
        "models.resnet20.split_bn=False",
        "models.resnet20.split_bn=True",
    ]

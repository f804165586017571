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

"""Bad input gets one line on stderr and exit status 2, before anything is trained or written.

One row per case; docs/reliability.md lists the same cases (``test_the_table_in_the_docs_is_in_step``
keeps the two in step). Each case builds what a user would have on disk, runs the real command
line in-process (``ait.cli.main``) and checks the exit status, the words of the message, that no
traceback was printed and that no run directory appeared.
"""

from __future__ import annotations

import pickle
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from ait.cli import main
from ait_testutils import REPO, tiny_config


def npz(path: Path, shape=(8, 32, 32, 3), labels=None) -> Path:
    labels = np.arange(shape[0]) % 4 if labels is None else np.asarray(labels)
    np.savez(path, images=np.zeros(shape, np.uint8), labels=labels)
    return path


def config(tmp: Path, **data) -> Path:
    """A tiny run config written to tmp/cfg.yaml; ``data`` replaces its data section."""
    cfg = tiny_config(tmp, "baseline", train={"epochs": 1})
    if data:
        cfg["data"] = data
    path = tmp / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def arrays(tmp: Path, train: Path, test: Path) -> list[str]:
    return ["train", str(config(tmp, dataset="npz", train_file=str(train), test_file=str(test)))]


def with_override(override: str) -> Callable[[Path], list[str]]:
    return lambda tmp: ["train", str(config(tmp)), "--set", override]


def crafted_cifar(tmp: Path) -> list[str]:
    class Payload:
        def __reduce__(self):
            import os

            return os.system, (f"touch {tmp / 'PAYLOAD_RAN'}",)

    folder = tmp / "cifar" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    (folder / "batches.meta").write_bytes(pickle.dumps({b"label_names": [b"c%d" % i for i in range(10)]}))
    (folder / "data_batch_1").write_bytes(pickle.dumps({b"data": Payload(), b"labels": [0]}))
    return ["train", str(config(tmp, dataset="cifar10", root=str(tmp / "cifar")))]


def foreign_directory(tmp: Path) -> list[str]:
    (tmp / "thesis").mkdir()
    (tmp / "thesis" / "thesis.tex").write_text("three years of work")
    return ["train", str(config(tmp)), "--run-dir", str(tmp / "thesis"), "--overwrite"]


def lone_config_directory(tmp: Path) -> list[str]:
    (tmp / "mine").mkdir()
    (tmp / "mine" / "config.yaml").write_text("name: my own notes\n")
    return ["train", str(config(tmp)), "--run-dir", str(tmp / "mine"), "--overwrite"]


def weights_file(make: Callable[[Path], Path]) -> Callable[[Path], list[str]]:
    """``ait train`` of the tiny config with the file ``make`` writes as its initial weights."""

    def argv(tmp: Path) -> list[str]:
        return ["train", str(config(tmp)), "--set", f"models.test_tiny.weights={make(tmp)}"]

    return argv


def other_architecture(tmp: Path) -> Path:
    from ait import models

    torch.save(models.create("resnet20", 4).state_dict(), tmp / "resnet20.pt")
    return tmp / "resnet20.pt"


def code_in_weights(tmp: Path) -> Path:
    class Payload:
        def __reduce__(self):
            import os

            return os.system, (f"touch {tmp / 'PAYLOAD_RAN'}",)

    (tmp / "w.pt").write_bytes(pickle.dumps({"conv.weight": Payload()}))
    return tmp / "w.pt"


@dataclass
class Case:
    id: str
    argv: Callable[[Path], list[str]]
    message: str  # a regular expression the one line of stderr must match
    kept: str = ""  # a file (relative to tmp) that must still hold what the case wrote


def config_file(name: str, content: bytes | None) -> Callable[[Path], list[str]]:
    """``ait train`` of the file ``name`` holding ``content`` (None: a directory of that name)."""

    def argv(tmp: Path) -> list[str]:
        path = tmp / name
        if content is None:
            path.mkdir()
        else:
            path.write_bytes(content)
        return ["train", str(path)]

    return argv


def beyond_classes_txt(tmp: Path) -> list[str]:
    (tmp / "classes.txt").write_text("a\nb\nc\nd\n")
    return arrays(tmp, npz(tmp / "a.npz", labels=[0, 1, 2, 9] * 2), npz(tmp / "b.npz"))


def labelled(train_labels=None, test_shape=(8, 32, 32, 3), test_labels=None) -> Callable[[Path], list[str]]:
    """npz training and test files, with these labels and test image shape."""
    return lambda tmp: arrays(tmp, npz(tmp / "a.npz", labels=train_labels), npz(tmp / "b.npz", test_shape, test_labels))


CASES = [
    Case(
        "image-size-mismatch",
        labelled(test_shape=(8, 28, 28, 3)),
        r"test images are \(3, 28, 28\) .* training images .* are \(3, 32, 32\)",
    ),
    Case("channel-mismatch", labelled(test_shape=(8, 32, 32, 1)), r"test images are \(1, 32, 32\)"),
    Case(
        "class-count-mismatch",
        labelled(test_labels=[0, 1, 2, 12] * 2),
        r"the test set has 13 classes but the training set .* has 4",
    ),
    Case("label-beyond-classes-txt", beyond_classes_txt, r"a\.npz: labels must be in \[0, 4\), found 9 at index 3"),
    Case("huge-label", labelled(train_labels=[0, 1, 2, 2**40] * 2), r"labels go up to 1099511627776.*classes.txt"),
    Case("negative-label", labelled(train_labels=[0, 1, 2, -1] * 2), r"labels must be >= 0, found -1"),
    Case("max-steps-negative", with_override("train.max_steps_per_epoch=-1"), r"train\.max_steps_per_epoch: expected"),
    Case("max-steps-zero", with_override("train.max_steps_per_epoch=0"), r"train\.max_steps_per_epoch: expected"),
    Case("warmup-negative", with_override("optim.warmup_epochs=-5"), r"optim\.warmup_epochs: expected"),
    Case(
        "warmup-past-the-end",
        with_override("optim.warmup_epochs=50"),
        r"optim\.warmup_epochs: expected at most train\.epochs \(1\), got 50",
    ),
    Case("momentum-negative", with_override("optim.momentum=-1"), r"optim\.momentum: expected .*\[0, 1\)"),
    Case("momentum-nan", with_override("optim.momentum=nan"), r"optim\.momentum: expected"),
    Case(
        "nesterov-without-momentum",
        lambda tmp: with_override("optim.nesterov=true")(tmp) + ["--set", "optim.momentum=0"],
        r"optim\.nesterov: expected false unless optim\.name is sgd with optim\.momentum > 0",
    ),
    Case(
        "split-bn-with-sync-batchnorm",
        lambda tmp: (
            with_override("strategy.name=ait")(tmp)
            + ["--set", "strategy.views=[rp, rp]", "--set", "train.sync_batchnorm=true"]
            + ["--set", f"models.{tiny_config(tmp, 'baseline')['strategy']['networks'][0]}.split_bn=true"]
        ),
        r"train\.sync_batchnorm: expected false with models\.NAME\.split_bn",
    ),
    Case(
        "demo-epochs-zero", lambda tmp: ["demo", "--epochs", "0"], r"^ait demo: error: argument --epochs: expected an"
    ),
    Case("eval-seed-too-large", lambda tmp: ["eval", str(tmp), "--seed", str(2**64)], r"argument --seed: expected an"),
    Case("sweep-seed-negative", lambda tmp: ["sweep", str(config(tmp)), "--seeds", "-1"], r"--seeds: expected"),
    Case("sweep-budget-nan", lambda tmp: ["sweep", str(config(tmp)), "--budget-s", "nan"], r"--budget-s: expected a"),
    Case("sweep-cluster-unknown", lambda tmp: ["sweep", str(config(tmp)), "--cluster", "foo"], r"--cluster: invalid"),
    Case("sweep-jobs-zero", lambda tmp: ["sweep", str(config(tmp)), "--jobs", "0"], r"argument --jobs: expected an"),
    Case("temperature-inf", with_override("consistency.temperature=.inf"), r"consistency\.temperature: .*finite"),
    Case("eval-batch-zero", with_override("train.eval_batch_size=0"), r"train\.eval_batch_size: expected"),
    Case("threads-negative", with_override("train.num_threads=-1"), r"train\.num_threads: expected"),
    Case("train-limit-zero", with_override("data.train_limit=0"), r"data\.train_limit: expected"),
    Case("test-limit-negative", with_override("data.test_limit=-1"), r"data\.test_limit: expected"),
    Case("synthetic-size-zero", with_override("data.synthetic_size=0"), r"data\.synthetic_size: expected"),
    Case("seed-too-large", with_override("seed=1e20"), r"seed: expected an integer in \[0, "),
    Case(
        "name-climbs-out",
        with_override("name=../../escape"),
        r"name: expected a name inside out_dir .*'\.\./\.\./escape'",
    ),
    Case("name-empty", with_override("name="), r"name: expected a name inside out_dir"),
    Case("cifar-without-root", with_override("data.dataset=cifar10"), r"data\.root: cifar10 needs a folder"),
    Case("resume-missing", lambda tmp: ["train", "--resume", str(tmp / "gone")], r"--resume .*gone: no such directory"),
    Case(
        "resume-not-a-run",
        lambda tmp: (tmp / "empty").mkdir() or ["train", "--resume", str(tmp / "empty")],
        r"--resume .*empty: not a run directory \(it has no config\.yaml\)",
    ),
    Case(
        "out-dir-is-a-file",
        lambda tmp: (tmp / "notes.txt").write_text("mine") and with_override(f"out_dir={tmp / 'notes.txt'}")(tmp),
        r"cannot write to run directory .*: '.*notes\.txt' is a file, not a folder",
        kept="notes.txt",
    ),
    Case("device-unknown", with_override("train.device=tpu"), r"train\.device: expected auto, cpu, cuda"),
    Case("device-missing-gpu", with_override("train.device=cuda:99"), r"train\.device: 'cuda:99' was asked for"),
    Case("config-empty", config_file("e.yaml", b"# nothing\n"), r"e\.yaml: holds no config keys"),
    Case("config-binary", config_file("b.yaml", b"\x89PNG\r\n\x1a\n\xff\xfe"), r"b\.yaml: not a text file"),
    Case("config-directory", config_file("d.yaml", None), r"d\.yaml: is a directory"),
    Case("cifar-crafted-pickle", crafted_cifar, r"data_batch_1: refused to load posix\.system"),
    Case(
        "model-unknown",
        with_override("strategy.networks=[timm:resnet181]"),
        r"strategy\.networks\[0\]: 'timm:resnet181': timm has no classification model 'resnet181'; close names",
    ),
    Case(
        "model-module-missing",
        with_override("strategy.networks=[no_such_nets:make]"),
        r"model 'no_such_nets:make': cannot import module 'no_such_nets' \(ModuleNotFoundError",
    ),
    Case(
        "model-layer-missing",
        lambda tmp: (
            with_override("strategy.networks=[timm:test_vit]")(tmp)
            + ["--set", "models.timm:test_vit.kwargs.img_size=32", "--set", "consistency.layer=feature_map"]
        ),
        r"consistency\.layer=feature_map: model 'timm:test_vit' gives no spatial feature map",
    ),
    Case(
        "weights-misfit",
        weights_file(other_architecture),
        r"resnet20\.pt' does not fit 'test_tiny': \d+ missing: .*; \d+ unexpected: ",
    ),
    Case(
        "weights-with-code",
        weights_file(code_in_weights),
        r"w\.pt' cannot be read as a state dict \(it does not unpickle as tensors alone: damaged, not written by "
        r"torch\.save, or holding Python objects whose loading would run code \(ait loads none\)\)$",
    ),
    Case(
        "overwrite-foreign-directory",
        foreign_directory,
        r"is not a run directory that ait made \(it holds thesis\.tex\)",
        kept="thesis/thesis.tex",
    ),
    Case(
        "overwrite-lone-config", lone_config_directory, r"is not a run directory that ait made", kept="mine/config.yaml"
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_one_line_and_exit_2(case, tmp_path, capsys):
    argv = case.argv(tmp_path)
    before = (tmp_path / case.kept).read_bytes() if case.kept else None
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    assert re.search(case.message, err), err
    assert not (tmp_path / "runs").exists()  # nothing trained, nothing written
    assert not (tmp_path / "PAYLOAD_RAN").exists()
    if case.kept:
        assert (tmp_path / case.kept).read_bytes() == before


def test_the_table_in_the_docs_is_in_step():
    """Every case here has a row in docs/reliability.md, and every bad-input row there a case here."""
    text = (REPO / "docs" / "reliability.md").read_text()
    listed = set(re.findall(r"`bad-input:([a-z0-9-]+)`", text))
    assert listed == {c.id for c in CASES}
    named_tests = set(re.findall(r"`(tests/[\w/]+\.py)::(\w+)`", text))
    for path, name in named_tests:
        assert re.search(rf"^def {name}\(", (REPO / path).read_text(), re.M), f"{path}::{name} is not a test"

"""`ait eval` on image-folder runs: the val/ split streamed, fixed sets and corruptions made image
by image, the official ImageNet-C layout, and mCE against a run or AlexNet's published errors."""

import argparse
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import ait
from ait.evaluate.cli import add_eval_parser, run_eval
from ait.evaluate.corruptions import corrupt_image
from ait.evaluate.folders import CorruptionTransform, FixedSetTransform, FolderTestSet, official_corruption_set
from ait.evaluate.loading import load_run
from ait.evaluate.testsets import fixed_set_recipe
from ait_testutils import make_image_folder, tiny_config

SETS = ["original", "crop", "gray", "color"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    # Classes a and d (b and e, c and f) share a mean colour: accuracy well below 100 tells more.
    return make_image_folder(tmp_path_factory.mktemp("imagenet"), train_per_class=3, val_per_class=2, classes="abcdef")


def folder_run(root: Path, folder: Path, name: str, workers: int = 0) -> Path:
    cfg = tiny_config(
        root,
        "ait",
        strategy={"views": ["rrc", "rrc"]},
        data={"dataset": "imagefolder", "root": str(folder), "image_size": 32, "workers": workers},
        train={"epochs": 2, "batch_size": 4, "num_threads": 1, "eval_batch_size": 4},
    )
    cfg["name"] = name
    return Path(ait.train(cfg)["run_dir"])


@pytest.fixture(scope="module")
def run_dir(folder, tmp_path_factory) -> Path:
    return folder_run(tmp_path_factory.mktemp("runs"), folder, "folder_ait")


def parse(argv):
    parser = argparse.ArgumentParser(prog="ait")
    add_eval_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(["eval", *argv])


def read(path: Path) -> dict:
    return json.loads(path.read_text())


def test_the_streamed_test_set_counts_each_image_once_and_matches_training(run_dir):
    assert run_eval(parse([str(run_dir), "--transfer", "--variation", "--device", "cpu"])) == 0
    accuracy = read(run_dir / "eval" / "accuracy.json")
    assert accuracy["num_samples"] == 12  # 6 classes x 2 validation images
    trained = read(run_dir / "summary.json")["networks"][0]
    assert accuracy["networks"]["net0"]["top1"] == pytest.approx(trained["final_top1"])  # as training evaluated it
    transfer = read(run_dir / "eval" / "transfer.json")
    assert transfer["test_sets"] == SETS and len(read(run_dir / "eval" / "variation.json")["pairs"]) == 6


def test_fixed_sets_and_corruptions_do_not_depend_on_batches_or_workers(run_dir):
    run = load_run(run_dir, device="cpu")
    test = run.data.test
    assert isinstance(test, FolderTestSet) and len(test) == 12

    def images(batch_size: int, workers: int, transform) -> torch.Tensor:
        return torch.cat(list(FolderTestSet(test.index, test.size, workers=workers).batches(batch_size, transform)))

    for transform in (FixedSetTransform("crop", 32, seed=0), CorruptionTransform("glass_blur", 4, seed=0)):
        one_by_one = images(1, 0, transform)
        assert torch.equal(images(4, 2, transform), one_by_one)  # 2 worker processes, batches of 4
    clean = images(12, 0, None)
    crops = images(12, 0, FixedSetTransform("crop", 32, seed=0))
    assert not torch.equal(crops, clean) and not torch.equal(crops, images(12, 0, FixedSetTransform("crop", 32, 1)))
    assert torch.equal(images(12, 0, FixedSetTransform("original", 32)), clean)
    # Image 5's corruption is a function of (seed, corruption, index 5) alone, at every severity's draws.
    fog = images(12, 0, CorruptionTransform("fog", 3, seed=0))
    assert torch.equal(fog[5], corrupt_image(clean[5], "fog", 3, seed=0, index=5, constants="imagenet"))


def test_crop_padding_scales_with_the_image_side():
    assert fixed_set_recipe("crop", 32).pad == 4 and fixed_set_recipe("crop", 28).pad == 4
    assert fixed_set_recipe("crop", 224).pad == 28 and fixed_set_recipe("original", 224) is None
    assert fixed_set_recipe("gray", 224) == fixed_set_recipe("gray", 32)


def write_official_layout(root: Path, run_dir: Path, name: str, severity: int) -> Path:
    """root/NAME/SEVERITY/CLASS/*.png holding the run's own clean evaluation crops (lossless)."""
    test = load_run(run_dir, device="cpu").data.test
    crops = torch.cat(list(test.batches(4)))
    for k, (crop, label) in enumerate(zip(crops, test.labels.tolist())):
        folder = root / name / str(severity) / test.classes[label]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(crop.permute(1, 2, 0).numpy()).save(folder / f"{k}.png")
    return root


def test_the_official_imagenet_c_layout_is_read_without_the_resize_step(run_dir, tmp_path, capsys):
    official = write_official_layout(tmp_path / "ImageNet-C", run_dir, "fog", 3)
    argv = [str(run_dir), "--corruptions-dir", str(official), "--corruption-names", "fog", "--severities", "3"]
    assert run_eval(parse([*argv, "--device", "cpu"])) == 0
    summary = read(run_dir / "eval" / "corruptions.json")
    clean = read(run_dir / "eval" / "accuracy.json")["networks"]["net0"]["top1"]
    # The files are the clean crops themselves: read as the official crops are (no 256 -> 224 step),
    # they are those crops pixel for pixel and score the clean accuracy.
    assert summary["networks"]["net0"]["fog"]["3"] == pytest.approx(clean)
    test = load_run(run_dir, device="cpu").data.test
    read_back = official_corruption_set(official, "fog", 3, test)
    assert torch.equal(torch.cat(list(read_back.batches(5))), torch.cat(list(test.batches(5))))
    assert summary["constants"] == "official" and summary["source"] == str(official)


def test_official_layout_errors_name_the_folder(run_dir, tmp_path, capsys):
    official = write_official_layout(tmp_path / "ImageNet-C", run_dir, "fog", 3)
    argv = [str(run_dir), "--corruptions-dir", str(official), "--corruption-names", "fog", "--device", "cpu"]
    with pytest.raises(ait.data.DataError, match=r"ImageNet-C/fog/1'.*CORRUPTION/SEVERITY/CLASS"):
        run_eval(parse([*argv, "--severities", "1"]))
    (official / "fog" / "3" / "zebra").mkdir()
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(official / "fog" / "3" / "zebra" / "z.png")
    with pytest.raises(ait.data.DataError, match="zebra"):
        run_eval(parse([*argv, "--severities", "3"]))


def test_generated_corruptions_with_imagenet_constants_and_both_mces(run_dir, tmp_path):
    argv = [str(run_dir), "--corruption-names", "fog,contrast", "--baseline", str(run_dir)]
    assert run_eval(parse([*argv, "--reference-errors", "alexnet", "--device", "cpu"])) == 0
    summary = read(run_dir / "eval" / "corruptions.json")
    assert summary["constants"] == "imagenet" and summary["severities"] == [1, 2, 3, 4, 5]
    assert summary["mce"]["net0"] == pytest.approx(100.0)  # the run against itself
    errors = {c: [100 - v for v in summary["networks"]["net0"][c].values()] for c in ("fog", "contrast")}
    alexnet = {"fog": 81.9324, "contrast": 85.3204}  # the published AlexNet errors, in %
    expected = np.mean([100 * np.mean(errors[c]) / alexnet[c] for c in alexnet])
    assert summary["mce_reference"] == {"name": "alexnet", "mce": {"net0": pytest.approx(expected)}}


def test_tsne_of_an_image_folder_run_is_left_out_with_a_warning(run_dir):
    with pytest.warns(RuntimeWarning, match="no t-SNE, which is for in-memory test sets only"):
        assert run_eval(parse([str(run_dir), "--all", "--device", "cpu"])) == 0
    assert not (run_dir / "eval" / "tsne.json").exists() and (run_dir / "eval" / "transfer.json").exists()


def test_an_mce_baseline_on_other_files_is_refused(run_dir, folder, tmp_path):
    other_folder = make_image_folder(tmp_path / "other", train_per_class=4, val_per_class=2)
    other = folder_run(tmp_path, other_folder, "other_ait")
    argv = [str(run_dir), "--corruption-names", "fog", "--severities", "1", "--baseline", str(other)]
    with pytest.raises(ait.engine.rundir.RunDirError, match="different test set"):
        run_eval(parse([*argv, "--device", "cpu"]))


def test_an_evaluated_image_folder_run_is_in_the_report(run_dir, tmp_path):
    from ait.cli import main

    argv = [str(run_dir), "--transfer", "--corruption-names", "fog,contrast", "--reference-errors", "alexnet"]
    assert run_eval(parse([*argv, "--device", "cpu"])) == 0
    assert main(["report", str(run_dir), "--out", str(tmp_path / "report"), "--csv", str(tmp_path / "csv")]) == 0
    text = (tmp_path / "report" / "report.md").read_text()
    assert "## Table 5: augmentation transfer" in text and "common-corruption robustness" in text
    metrics = {line.split(",")[4] for line in (tmp_path / "csv" / "results.csv").read_text().splitlines()[1:]}
    assert {"transfer/gray/top1", "corruption/fog/5", "corruption/mce_alexnet"} <= metrics


def test_a_model_ait_did_not_train_is_evaluated_on_an_image_folder(run_dir, folder, tmp_path, monkeypatch):
    """The run's weights as a published file, evaluated with --model on the same folder (named
    relative to $AIT_DATA, as a run's may be): the run's numbers."""
    from safetensors.torch import save_file

    from ait.engine.checkpoint import load_checkpoint

    (weights,) = load_checkpoint(run_dir / "checkpoint.pt")["networks"]
    save_file({k: v.contiguous() for k, v in weights.items()}, str(tmp_path / "published.safetensors"))
    monkeypatch.setenv("AIT_DATA", str(folder.parent))
    monkeypatch.chdir(tmp_path)  # not where the folder lies
    data = ["data.dataset=imagefolder", f"data.root={folder.name}", "data.image_size=32", "data.workers=0"]
    sets = [arg for key in [*data, "train.eval_batch_size=4"] for arg in ("--set", key)]
    published = str(tmp_path / "published.safetensors")
    argv = ["--model", "test_tiny", "--weights", published, "--out", str(tmp_path / "out")]
    assert run_eval(parse([*argv, *sets, "--transfer", "--device", "cpu"])) == 0
    assert run_eval(parse([str(run_dir), "--transfer", "--device", "cpu"])) == 0
    theirs = read(tmp_path / "out" / "eval" / "transfer.json")["networks"]["net0"]
    assert theirs == read(run_dir / "eval" / "transfer.json")["networks"]["net0"]
    assert read(tmp_path / "out" / "model.json")["config"]["data"]["root"] == str(folder)  # found again from anywhere


def test_an_undecodable_validation_file_is_named(tmp_path):
    root = make_image_folder(tmp_path / "imagenet", train_per_class=2, val_per_class=2)
    run = folder_run(tmp_path, root, "broken_ait")
    bad = sorted((root / "val" / "b").iterdir())[0]
    bad.write_bytes(b"not an image")
    with pytest.raises(ait.engine.rundir.RunDirError, match="--allow-data-change"):  # the files changed
        run_eval(parse([str(run), "--transfer", "--device", "cpu"]))
    with pytest.raises(ait.data.DataError, match=str(bad)):
        run_eval(parse([str(run), "--transfer", "--device", "cpu", "--allow-data-change"]))


def test_with_skip_corrupt_a_replaced_image_counts_with_its_own_label_as_in_training(tmp_path):
    root = make_image_folder(tmp_path / "imagenet", train_per_class=3, val_per_class=2, classes="abcdef")
    (root / "val" / "c" / "broken.png").write_bytes(b"not an image")  # replaced by the next image, of class d
    cfg = tiny_config(
        tmp_path,
        "ait",
        strategy={"views": ["rrc", "rrc"]},
        data={"dataset": "imagefolder", "root": str(root), "image_size": 32, "workers": 0, "skip_corrupt": True},
        train={"epochs": 2, "batch_size": 4, "num_threads": 1, "eval_batch_size": 4},
    )
    run = Path(ait.train(cfg)["run_dir"])
    assert run_eval(parse([str(run), "--transfer", "--device", "cpu"])) == 0
    accuracy = read(run / "eval" / "accuracy.json")
    assert accuracy["num_samples"] == 13
    assert accuracy["networks"]["net0"]["top1"] == pytest.approx(
        read(run / "summary.json")["networks"][0]["final_top1"]
    )
    assert load_run(run, device="cpu").data.test.labels.tolist().count(3) == 2  # before a pass: the files' labels


def test_published_errors_need_every_severity_and_corruption_before_any_work(run_dir, tmp_path):
    from ait.config import ConfigError

    argv = [str(run_dir), "--corruption-names", "fog", "--device", "cpu"]
    with pytest.raises(ConfigError, match="all five are needed .*--severities 3"):
        run_eval(parse([*argv, "--severities", "3", "--reference-errors", "alexnet"]))
    mine = tmp_path / "mine.json"
    mine.write_text(json.dumps({"snow": 50.0}))
    with pytest.raises(ait.data.DataError, match="no positive error for fog"):
        run_eval(parse([*argv, "--reference-errors", str(mine)]))


def test_constants_for_the_official_files_are_refused(run_dir, tmp_path):
    from ait.config import ConfigError

    argv = [str(run_dir), "--corruptions-dir", str(tmp_path), "--corruption-constants", "cifar", "--device", "cpu"]
    with pytest.raises(ConfigError, match="applies to generated corruptions, not to --corruptions-dir"):
        run_eval(parse(argv))

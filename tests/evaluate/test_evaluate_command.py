"""`ait eval` end to end on real (tiny) run directories, and load_run's errors."""

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import ait
from ait.engine.rundir import RunDirError
from ait.evaluate import RunLoadError, load_run
from ait.evaluate.cli import add_eval_parser, run_eval
from ait_testutils import tiny_config

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SETS = ["original", "crop", "gray", "color"]
PAIRS = ["original,crop", "original,gray", "original,color", "crop,gray", "crop,color", "gray,color"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A one-network AIT run and a two-network DML run, trained once for the module (~2 s)."""
    root = tmp_path_factory.mktemp("eval_runs")
    out = {}
    for strategy in ("ait", "dml"):
        # One thread: with a background job on a 2-core machine, two threads contend and run ~5x slower.
        cfg = tiny_config(root, strategy, train={"epochs": 3, "num_threads": 1})
        out[strategy] = ait.train(cfg)
    return out


def parse(argv):
    parser = argparse.ArgumentParser(prog="ait")
    add_eval_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(["eval", *argv])


def read(path):
    return json.loads(path.read_text())


def test_eval_all_writes_the_four_files_in_their_exact_formats(runs, tmp_path, capsys):
    run_dir = runs["ait"]["run_dir"]
    assert run_eval(parse([run_dir, "--all", "--cache-dir", str(tmp_path / "cache"), "--device", "cpu"])) == 0
    eval_dir = tmp_path.parent / "x"  # placeholder, replaced below
    from pathlib import Path

    eval_dir = Path(run_dir) / "eval"
    assert sorted(p.name for p in eval_dir.iterdir()) == [
        "accuracy.json",
        "transfer.json",
        "tsne.json",
        "tsne.png",
        "variation.json",
    ]
    accuracy = read(eval_dir / "accuracy.json")
    assert list(accuracy) == ["test_set", "num_samples", "networks"] and list(accuracy["networks"]) == ["net0"]
    # The reloaded network gives exactly the accuracy training measured on the same test set.
    summary_net = runs["ait"]["networks"][0]
    assert accuracy["networks"]["net0"]["top1"] == pytest.approx(summary_net["final_top1"], abs=1e-3)
    assert accuracy["networks"]["net0"]["top5"] == pytest.approx(summary_net["final_top5"], abs=1e-3)

    transfer = read(eval_dir / "transfer.json")
    assert list(transfer) == ["seed", "test_sets", "networks"] and transfer["seed"] == 0
    assert transfer["test_sets"] == SETS and list(transfer["networks"]) == ["net0"]
    for name in SETS:
        acc = transfer["networks"]["net0"][name]
        assert set(acc) == {"top1", "top5"} and 0 <= acc["top1"] <= acc["top5"] <= 100
    assert transfer["networks"]["net0"]["original"] == accuracy["networks"]["net0"]

    variation = read(eval_dir / "variation.json")
    assert list(variation) == ["seed", "pairs", "networks"] and variation["pairs"] == PAIRS
    assert list(variation["networks"]["net0"]) == PAIRS
    for pair in PAIRS:
        v = variation["networks"]["net0"][pair]
        assert set(v) == {"kl", "feature_l2"} and v["kl"] > 0 and v["feature_l2"] > 0

    tsne = read(eval_dir / "tsne.json")
    assert list(tsne) == ["seed", "num_samples", "num_variants", "points", "sample", "variant", "label"]
    assert (tsne["num_samples"], tsne["num_variants"]) == (14, 16)  # the paper's Figure 6
    assert len(tsne["points"]) == len(tsne["sample"]) == len(tsne["variant"]) == len(tsne["label"]) == 224
    png = (eval_dir / "tsne.png").read_bytes()
    assert png[:8] == PNG_SIGNATURE and len(png) > 10_000

    out = capsys.readouterr().out
    assert "| network | original | crop | gray | color |" in out and "| original,crop |" in out
    assert str(eval_dir) in out
    assert len(list((tmp_path / "cache").glob("*.pt"))) == 3  # crop, gray, color cached


def test_default_is_transfer_and_variation_with_ensemble_for_two_networks(runs, tmp_path, capsys):
    from pathlib import Path

    run_dir = Path(runs["dml"]["run_dir"])
    assert run_eval(parse([str(run_dir), "--cache-dir", str(tmp_path), "--batch-size", "7", "--seed", "2"])) == 0
    eval_dir = run_dir / "eval"
    assert sorted(p.name for p in eval_dir.iterdir()) == ["accuracy.json", "transfer.json", "variation.json"]
    transfer = read(eval_dir / "transfer.json")
    assert transfer["seed"] == 2 and list(transfer["networks"]) == ["net0", "net1", "ensemble"]
    assert list(read(eval_dir / "accuracy.json")["networks"]) == ["net0", "net1", "ensemble"]
    assert list(read(eval_dir / "variation.json")["networks"]) == ["net0", "net1"]  # no ensemble features
    for k, net in enumerate(runs["dml"]["networks"]):
        assert transfer["networks"][f"net{k}"]["original"]["top1"] == pytest.approx(net["final_top1"], abs=1e-3)
    assert "| ensemble |" in capsys.readouterr().out


def test_only_tsne_still_writes_accuracy(runs, tmp_path):
    from pathlib import Path

    run_dir = Path(runs["ait"]["run_dir"])
    args = parse([str(run_dir), "--tsne", "--tsne-samples", "4", "--tsne-variants", "3", "--cache-dir", str(tmp_path)])
    for f in (run_dir / "eval").glob("*"):
        f.unlink()
    run_eval(args)
    assert sorted(p.name for p in (run_dir / "eval").iterdir()) == ["accuracy.json", "tsne.json", "tsne.png"]
    assert len(read(run_dir / "eval" / "tsne.json")["points"]) == 12
    assert not list(tmp_path.glob("*.pt"))  # only the original test set was needed


def test_load_run_restores_config_networks_data_and_prepare(runs):
    run = load_run(runs["ait"]["run_dir"], device="cpu")
    assert run.config.name == "tiny_ait" and run.summary["run_dir"] == runs["ait"]["run_dir"]
    assert len(run.networks) == 1 and not run.networks[0].training
    assert run.precision.name == "fp32" and run.precision.device.type == "cpu"
    assert run.data.test.images.dtype == torch.uint8 and len(run.data.test) == 80
    x = run.prepare(run.data.test.images[:4])
    mean = torch.tensor(run.data.mean).view(1, -1, 1, 1)
    std = torch.tensor(run.data.std).view(1, -1, 1, 1)
    torch.testing.assert_close(x, (run.data.test.images[:4].float() / 255 - mean) / std)


def test_load_run_errors_name_the_path(runs, tmp_path):
    import shutil

    missing = tmp_path / "nope"
    with pytest.raises(RunLoadError, match="does not exist") as err:
        load_run(missing)
    assert str(missing) in str(err.value) and isinstance(err.value, RunDirError)  # the CLI prints RunDirError

    partial = tmp_path / "partial"
    shutil.copytree(runs["ait"]["run_dir"], partial)
    (partial / "checkpoint.pt").unlink()
    with pytest.raises(RunLoadError, match="checkpoint.pt") as err:
        load_run(partial)
    assert str(partial) in str(err.value)

    damaged = tmp_path / "damaged"
    shutil.copytree(runs["ait"]["run_dir"], damaged)
    (damaged / "checkpoint.pt").write_bytes(b"garbage")
    with pytest.raises(RunLoadError, match="damaged") as err:
        load_run(damaged)
    assert str(damaged) in str(err.value)

    no_config = tmp_path / "no_config"
    shutil.copytree(runs["ait"]["run_dir"], no_config)
    (no_config / "config.yaml").unlink()
    with pytest.raises(RunLoadError, match="config.yaml") as err:
        load_run(no_config)
    assert str(no_config) in str(err.value)

    # run_eval checks every directory before evaluating any: nothing is written for the good one.
    good = tmp_path / "good"
    shutil.copytree(runs["ait"]["run_dir"], good)
    shutil.rmtree(good / "eval", ignore_errors=True)
    with pytest.raises(RunLoadError, match="nope"):
        run_eval(parse([str(good), str(missing), "--cache-dir", str(tmp_path / "cache")]))
    assert not (good / "eval").exists()


def test_unfinished_run_is_evaluated_with_a_warning(runs, tmp_path):
    import shutil

    run_dir = tmp_path / "unfinished"
    shutil.copytree(runs["ait"]["run_dir"], run_dir)
    (run_dir / "summary.json").unlink()
    with pytest.warns(RuntimeWarning, match="no summary.json"):
        run = load_run(run_dir, device="cpu")
    assert run.summary is None
    command = ["eval", str(run_dir), "--device", "cpu", "--cache-dir", str(tmp_path / "c"), "--import", "ait_testutils"]
    tests = str(Path(__file__).resolve().parents[1])  # where ait_testutils lies (it registers test_tiny)
    said = subprocess.run(
        [sys.executable, "-m", "ait", *command], capture_output=True, text=True, env={**os.environ, "PYTHONPATH": tests}
    )
    assert said.returncode == 0, said.stderr
    (warning,) = [line for line in said.stderr.splitlines() if "no summary.json" in line]  # one line, ait's form
    assert warning.startswith(f"ait eval: warning: run directory {str(run_dir)!r} has no summary.json")
    assert "RuntimeWarning" not in said.stderr


def test_a_run_being_trained_is_not_evaluated_meanwhile(runs, tmp_path, capsys):
    from ait.cli import main
    from ait.engine.lock import RunLock

    run_dir = tmp_path / "held"
    shutil.copytree(runs["ait"]["run_dir"], run_dir)
    shutil.rmtree(run_dir / "eval", ignore_errors=True)
    held = RunLock(run_dir).acquire()  # as `ait train` holds it
    try:
        assert main(["eval", str(run_dir), "--device", "cpu"]) == 2
    finally:
        held.release()
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"ait eval: error: {run_dir} is in use by another process (pid")
    assert "--run-dir" not in err and not (run_dir / "eval").exists()


def test_bad_arguments_are_rejected_by_the_parser(capsys):
    with pytest.raises(SystemExit):
        parse(["somewhere", "--batch-size", "0"])
    assert "--batch-size" in capsys.readouterr().err


def test_a_failed_evaluation_lets_go_of_the_run_while_its_error_is_kept(runs, tmp_path, monkeypatch):
    from ait.engine.lock import RunLock
    from ait.evaluate import pipeline

    run_dir = tmp_path / "failing"
    shutil.copytree(runs["ait"]["run_dir"], run_dir)

    def failing(*args, **kwargs):
        raise RuntimeError("the evaluation went wrong")

    monkeypatch.setattr(pipeline, "evaluate_run", failing)
    with pytest.raises(RuntimeError, match="went wrong") as kept:  # its traceback holds the frames
        run_eval(parse([str(run_dir), "--device", "cpu"]))
    RunLock(run_dir).acquire().release()  # free at once, though `kept` is still alive
    assert kept.value.__traceback__ is not None  # held until here: the lock was freed all the same

"""`ait sweep FILE --evaluate` (ait.sweep.evals): a sweep file's eval: run for real on finished runs."""

import json

import yaml

from ait.cli import main
from ait.engine.lock import RunLock
from ait_testutils import tiny_config

# One corruption at one severity: a real evaluation with an mCE, in seconds.
EVAL_ARGS = ["--corruptions", "--corruption-names", "fog", "--severities", "1", "--device", "cpu"]


def write_sweep(tmp_path, baseline: str = "baseline.yaml", args=EVAL_ARGS) -> str:
    for strategy in ("baseline", "ait"):
        cfg = tiny_config(tmp_path, strategy)
        cfg["data"]["synthetic_size"] = 64
        cfg["train"]["epochs"] = 1  # with its checkpoint: the evaluation loads the networks from it
        (tmp_path / f"{strategy}.yaml").write_text(yaml.safe_dump(cfg))
    path = tmp_path / "sweep.yaml"
    experiment = {"configs": [str(tmp_path / "baseline.yaml"), str(tmp_path / "ait.yaml")], "seeds": [0]}
    experiment["eval"] = {"args": list(args), "baseline": str(tmp_path / baseline)}
    path.write_text(yaml.safe_dump({"experiments": [experiment]}))
    return str(path)


def test_evaluate_runs_each_finished_run_once_against_its_seeds_baseline(tmp_path, capsys):
    sweep = write_sweep(tmp_path)
    assert main(["sweep", sweep, "--evaluate"]) == 0
    assert "evaluate: 2 not trained" in capsys.readouterr().out
    assert main(["sweep", sweep, "--status"]) == 0
    assert capsys.readouterr().out.rstrip().endswith("evaluate: 2 not trained")
    assert main(["sweep", sweep]) == 0
    assert main(["sweep", sweep, "--evaluate"]) == 0
    assert "evaluate: 2 evaluated now" in capsys.readouterr().out
    runs = tmp_path / "runs"
    for name in ("tiny_baseline", "tiny_ait"):
        result = json.loads((runs / name / "seed0" / "eval" / "corruptions.json").read_text())
        assert result["corruptions"] == ["fog"] and result["severities"] == [1]
        assert str(runs / "tiny_baseline" / "seed0") in json.dumps(result)  # mCE against the seed's baseline
    assert main(["sweep", sweep, "--evaluate"]) == 0  # nothing left to do
    assert "evaluate: 2 evaluated" in capsys.readouterr().out
    assert main(["sweep", sweep, "--status"]) == 0
    assert capsys.readouterr().out.rstrip().endswith("sweep: 2 runs: 2 done\nevaluate: 2 evaluated")


def test_a_run_whose_baseline_has_not_finished_waits_for_a_later_pass(tmp_path, capsys):
    other = tiny_config(tmp_path, "baseline", name="not_trained_baseline")
    (tmp_path / "other.yaml").write_text(yaml.safe_dump(other))
    sweep = write_sweep(tmp_path, baseline="other.yaml")
    assert main(["sweep", sweep]) == 0
    capsys.readouterr()
    assert main(["sweep", sweep, "--evaluate"]) == 0
    assert "evaluate: 2 waiting for its baseline" in capsys.readouterr().out
    assert not (tmp_path / "runs" / "tiny_ait" / "seed0" / "eval" / "corruptions.json").exists()


def test_eval_arguments_are_checked_when_the_sweep_file_is_read(tmp_path, capsys):
    sweep = write_sweep(tmp_path, args=["--corruption-names", "fogg"])
    assert main(["sweep", sweep, "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "experiments[0]: eval: args: argument --corruption-names: unknown corruption(s) ['fogg']" in err


def test_a_run_held_by_another_process_is_skipped_as_busy_and_evaluated_by_a_later_pass(tmp_path, capsys):
    sweep = write_sweep(tmp_path)
    assert main(["sweep", sweep]) == 0
    capsys.readouterr()
    held = tmp_path / "runs" / "tiny_baseline" / "seed0"
    with RunLock(held):  # a second --evaluate pass (or ait train) in this directory
        assert main(["sweep", sweep, "--evaluate"]) == 0
        out = capsys.readouterr().out
    assert f"skipped, busy: {held} is in use by another process (pid" in out
    assert "evaluate: 1 busy in another process, 1 evaluated now" in out
    assert not (held / "eval" / "corruptions.json").exists()
    assert main(["sweep", sweep, "--evaluate"]) == 0
    assert "evaluate: 1 evaluated now, 1 evaluated" in capsys.readouterr().out
    assert (held / "eval" / "corruptions.json").is_file()

"""The `ait` command line: train, config, models; errors are one line and exit status 2."""

import json
import subprocess
import sys
from pathlib import Path

import yaml

from ait.cli import main
from ait_testutils import tiny_config


def write_config(tmp_path, **sections):
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(tiny_config(tmp_path, "ait", **sections)))
    return path


def test_train_writes_a_run_and_prints_its_directory(tmp_path, capsys):
    path = write_config(tmp_path, train={"epochs": 1})
    assert main(["train", str(path), "--set", "consistency.weight=2", "--run-dir", str(tmp_path / "r")]) == 0
    out = capsys.readouterr().out.strip()
    assert out == str(tmp_path / "r")
    assert yaml.safe_load((tmp_path / "r" / "config.yaml").read_text())["consistency"]["weight"] == 2.0
    assert json.loads((tmp_path / "r" / "summary.json").read_text())["consistency_weight"] == 2.0


def test_misspelt_override_is_a_one_line_error(tmp_path, capsys):
    path = write_config(tmp_path)
    assert main(["train", str(path), "--set", "consistency.wieght=2"]) == 2
    err = capsys.readouterr().err
    assert "did you mean 'weight'" in err and "Traceback" not in err
    assert not (tmp_path / "runs").exists()


def test_existing_run_dir_needs_overwrite(tmp_path, capsys):
    path = write_config(tmp_path, train={"epochs": 1})
    assert main(["train", str(path)]) == 0
    assert main(["train", str(path)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main(["train", str(path), "--overwrite"]) == 0


def test_config_prints_resolved_yaml(tmp_path, capsys):
    path = write_config(tmp_path)
    assert main(["config", str(path), "--set", "train.epochs=7"]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["train"]["epochs"] == 7


def test_models_lists_the_zoo(capsys):
    assert main(["models"]) == 0
    names = capsys.readouterr().out.split()
    assert {"resnet20", "resnet32", "resnet110", "mobilenetv2", "wrn28_10"} <= set(names)


def test_python_dash_m_entry_point(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "ait", "config", str(tmp_path / "missing.yaml")], capture_output=True, text=True
    )
    assert result.returncode == 2 and "missing.yaml" in result.stderr


def test_output_cut_short_by_a_closed_pipe_ends_quietly():
    root = Path(__file__).resolve().parent.parent
    seeds = " ".join(map(str, range(4000)))  # far more than a pipe's buffer holds
    cmd = f"{sys.executable} -m ait sweep configs/smoke/synthetic_resnet20_ait.yaml --seeds {seeds} --dry-run | head -1"
    done = subprocess.run(
        ["bash", "-c", cmd + '; echo "status=${PIPESTATUS[0]}"'], capture_output=True, text=True, cwd=root
    )
    assert done.stdout.startswith("sweep: 4000 runs") and "Traceback" not in done.stderr, done.stderr
    assert done.stdout.rstrip().endswith("status=141")

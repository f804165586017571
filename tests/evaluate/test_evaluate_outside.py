"""ait.evaluate.outside: what `ait eval --model` refuses before it evaluates anything."""

from __future__ import annotations

import json

import pytest

from ait.cli import main
from ait.evaluate.loading import RunLoadError
from ait.evaluate.outside import _check_out_dir


def test_an_unknown_model_is_named_as_the_option_the_user_gave(tmp_path, capsys):
    (tmp_path / "w.safetensors").write_bytes(b"")
    argv = ["eval", "--model", "nosuch", "--weights", str(tmp_path / "w.safetensors"), "--out", str(tmp_path / "o")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "--model: unknown model 'nosuch'" in err and "strategy.networks" not in err.split("Available")[0]
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("held", [{"mine": 1}, [1, 2], "text"])
def test_a_model_json_that_ait_did_not_write_is_not_taken_for_an_evaluation(tmp_path, held):
    (tmp_path / "model.json").write_text(json.dumps(held))
    record = {"model": "resnet20", "weights": "w.pt", "weights_sha256": "0" * 64}
    with pytest.raises(RunLoadError, match="holds files but no model.json of an earlier `ait eval --model`"):
        _check_out_dir(tmp_path, record)
    assert json.loads((tmp_path / "model.json").read_text()) == held

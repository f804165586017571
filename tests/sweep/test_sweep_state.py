"""ait.sweep.state: what --status says of a run directory."""

import yaml
from sweep_testutils import write_config

from ait.sweep import plan_sweep, run_status


def test_an_interrupted_run_says_how_many_epochs_it_recorded_passing_over_a_line_being_written(tmp_path):
    (planned,) = plan_sweep([write_config(tmp_path)], overrides=["train.epochs=3"])
    assert run_status(planned) == "to do"
    planned.run_dir.mkdir(parents=True)
    (planned.run_dir / "config.yaml").write_text(yaml.safe_dump(planned.config.to_dict()))
    (planned.run_dir / "metrics.jsonl").write_text('{"epoch": 1}\n{"epoch": 2}\n{"epo')
    assert run_status(planned) == "interrupted (2/3 epochs)"

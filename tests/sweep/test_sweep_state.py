"""ait.sweep.state: what --status says of a run directory."""

import yaml
from sweep_testutils import write_config

from ait.engine.lock import RunLock
from ait.sweep import plan_sweep, run_state, run_status


def test_an_interrupted_run_says_how_many_epochs_it_recorded_passing_over_a_line_being_written(tmp_path):
    (planned,) = plan_sweep([write_config(tmp_path)], overrides=["train.epochs=3"])
    assert run_status(planned) == "to do"
    planned.run_dir.mkdir(parents=True)
    (planned.run_dir / "config.yaml").write_text(yaml.safe_dump(planned.config.to_dict()))
    (planned.run_dir / "metrics.jsonl").write_text('{"epoch": 1}\n{"epoch": 2}\n{"epo')
    assert run_status(planned) == "interrupted (2/3 epochs)"


def test_a_run_another_process_has_just_begun_is_not_a_conflict(tmp_path):
    """Its lock is held and only config.yaml is written yet: a worker planning then sees it running."""
    (planned,) = plan_sweep([write_config(tmp_path)])
    held = RunLock(planned.run_dir).acquire()
    try:
        (planned.run_dir / "config.yaml").write_text(yaml.safe_dump(planned.config.to_dict()))
        assert run_state(planned.config, planned.run_dir)[0] == "interrupted"
        assert run_status(planned).startswith("running (pid")
    finally:
        held.release()
    assert run_state(planned.config, planned.run_dir)[0] == "conflict"  # a lone config.yaml nobody holds

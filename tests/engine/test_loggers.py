"""train.loggers: what each logger wrote, read back with its library's own reader (TensorBoard's
EventAccumulator, the MLflow client on SQLite, pandas), across a crash and a resume."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import ait
from ait.callbacks import Callback, register
from ait.config import ConfigError, load_config
from ait.engine.run import RunInterrupted, RunLoop
from ait_testutils import one_torch_thread, stop_after_first_epoch, tiny_config

# 320 samples, 16 a step (AIT: a network batch of 32 is 2 views of 16): 20 steps an epoch; a log every 2.
STEPS_PER_EPOCH, EPOCHS = 20, 3


def config(tmp_path: Path, loggers: list[str]) -> dict:
    return tiny_config(
        tmp_path,
        "ait",
        data={"dataset": "synthetic", "synthetic_size": 320},
        train={"epochs": EPOCHS, "loggers": loggers, "log_every": 2},
    )


def train(cfg, run_dir: Path, **kwargs) -> dict:
    with one_torch_thread():
        return ait.train(cfg, run_dir=run_dir, **kwargs)


def crash_in_second_epoch(cfg, run_dir: Path, monkeypatch, **kwargs) -> None:
    """The run dies (no checkpoint saved) at step 8 of epoch 2, after logging global steps 22 to 26."""
    guarded_step = RunLoop.guarded_step

    def dying(loop, epoch, step, batch, grad_norm=False):
        if epoch == 1 and step == 7:
            raise RuntimeError("the machine went away")
        return guarded_step(loop, epoch, step, batch, grad_norm)

    with monkeypatch.context() as patch:
        patch.setattr(RunLoop, "guarded_step", dying)
        with pytest.raises(RuntimeError, match="went away"):
            train(cfg, run_dir, **kwargs)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """An uninterrupted run, and the same run crashed in epoch 2 and resumed, with three loggers."""
    tmp = tmp_path_factory.mktemp("loggers")
    cfg = config(tmp, ["csv", "tensorboard", "mlflow"])
    straight = tmp / "straight"
    train(cfg, straight)
    resumed = tmp / "resumed"
    mp = pytest.MonkeyPatch()
    try:
        crash_in_second_epoch(cfg, resumed, mp)
    finally:
        mp.undo()
    train(cfg, resumed, resume=True)
    return straight, resumed


def tensorboard_curve(run: Path, tag: str) -> list[tuple[int, float]]:
    events = EventAccumulator(str(run / "tensorboard"), size_guidance={"scalars": 0})  # 0: keep every scalar
    events.Reload()
    return [(e.step, e.value) for e in events.Scalars(tag)]


def mlflow_curve(run: Path, key: str) -> list[tuple[int, float]]:
    record = json.loads((run / "mlflow.json").read_text())
    client = MlflowClient(tracking_uri=record["tracking_uri"])
    return sorted((m.step, m.value) for m in client.get_metric_history(record["run_id"], key))


def csv_curve(run: Path, metric: str) -> list[tuple[int, float]]:
    table = pd.read_csv(run / "metrics.csv")
    rows = table[table["metric"] == metric]
    return list(zip(rows["step"].tolist(), rows["value"].tolist()))


STEPS = list(range(2, EPOCHS * STEPS_PER_EPOCH + 1, 2))


@pytest.mark.parametrize("read", [tensorboard_curve, mlflow_curve, csv_curve], ids=["tensorboard", "mlflow", "csv"])
def test_a_resumed_run_gives_one_continuous_curve_equal_to_the_uninterrupted_one(runs, read):
    straight, resumed = runs
    for tag in ("loss/consistency", "loss/ce/net0", "lr", "grad_norm/net0"):
        curve = read(resumed, tag)
        assert [s for s, _ in curve] == STEPS, tag  # every step once: nothing doubled, nothing missing
        reference = read(straight, tag)
        assert [v for _, v in curve] == pytest.approx([v for _, v in reference], rel=1e-6), tag  # exact resume
    epochs = read(resumed, "epoch/test/net0/top1")
    assert [s for s, _ in epochs] == [STEPS_PER_EPOCH * e for e in range(1, EPOCHS + 1)]


def test_mlflow_keeps_one_run_with_the_config_as_parameters(runs):
    _, resumed = runs
    record = json.loads((resumed / "mlflow.json").read_text())
    client = MlflowClient(tracking_uri=record["tracking_uri"])
    run = client.get_run(record["run_id"])
    assert run.info.status == "FINISHED" and run.data.params["optim.lr"] == "0.1"
    assert len(client.search_runs([record["experiment_id"]])) == 1


def test_tensorboard_holds_the_config(runs):
    straight, _ = runs
    events = EventAccumulator(str(straight / "tensorboard"), size_guidance={"tensors": 0})
    events.Reload()
    assert "config/text_summary" in events.Tags()["tensors"]


def test_tensorboard_hparams_name_the_metric_the_run_logs(runs):
    straight, _ = runs
    events = EventAccumulator(str(straight / "tensorboard"), size_guidance={"tensors": 0, "scalars": 0})
    events.Reload()
    experiment = events.SummaryMetadata("_hparams_/experiment").plugin_data.content  # what the dashboard shows
    assert b"epoch/test/net0/top1" in experiment and "epoch/test/net0/top1" in events.Tags()["scalars"]


def test_a_relative_mlflow_tracking_uri_is_recorded_so_a_resume_elsewhere_finds_its_run(tmp_path, monkeypatch):
    from ait.engine.loggers import absolute_uri

    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///store.db")
    cfg = tiny_config(tmp_path, "baseline", train={"epochs": 1, "loggers": ["mlflow"]})
    train(cfg, tmp_path / "run")
    record = json.loads((tmp_path / "run" / "mlflow.json").read_text())
    assert record["tracking_uri"] == f"sqlite:///{here / 'store.db'}"
    monkeypatch.chdir(tmp_path)  # another folder: the record still names the same store
    assert MlflowClient(tracking_uri=record["tracking_uri"]).get_run(record["run_id"]).info.status == "FINISHED"
    assert (
        absolute_uri("mlruns") == (tmp_path / "mlruns").as_uri()
        and absolute_uri("http://host:5000") == "http://host:5000"
    )
    assert absolute_uri("file:runs/ml") == (tmp_path / "runs" / "ml").as_uri()
    assert absolute_uri("file://localhost/srv/ml") == "file:///srv/ml" and absolute_uri("databricks") == "databricks"


def test_wandb_offline_runs_write_their_config_and_a_resumed_one_names_its_first(tmp_path, monkeypatch):
    """W&B has no public reader of offline runs: what its files allow is checked (docs/README say so)."""
    monkeypatch.setenv("WANDB_SILENT", "true")
    cfg = config(tmp_path, ["wandb"])
    run = tmp_path / "run"
    crash_in_second_epoch(cfg, run, monkeypatch)
    first = json.loads((run / "wandb.json").read_text())
    train(cfg, run, resume=True)
    second = json.loads((run / "wandb.json").read_text())
    assert first["mode"] == "offline" and second["resumed_from"] == first["id"] != second["id"]
    (log,) = (run / "wandb").glob(f"offline-run-*-{second['id']}/run-{second['id']}.wandb")
    wanted = ("resumed_from", first["id"], "loss/consistency", "epoch/test/net0/top1", "optim")
    deadline = time.monotonic() + 60  # W&B's service process writes the file after finish() returns
    while True:
        data = log.read_bytes()  # protobuf records: their strings are plain bytes in the file
        missing = [text for text in wanted if text.encode() not in data]
        if not missing or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert not missing, f"{missing} not in {log} ({len(data)} bytes)"
    assert len(list((run / "wandb").glob("offline-run-*"))) == 2
    (crashed,) = (run / "wandb").glob(f"offline-run-*-{first['id']}/logs/debug.log")
    assert "exitcode: 1" in crashed.read_text()  # the crashed run is not marked a success


def test_a_wandb_run_stopped_by_a_signal_finishes_with_ait_s_exit_status(tmp_path, monkeypatch):
    """(Its preempting mark goes to a server only: an offline run's files do not hold it.)"""
    monkeypatch.setenv("WANDB_SILENT", "true")
    run = tmp_path / "run"
    stop_after_first_epoch(config(tmp_path, ["wandb"]), run, monkeypatch)
    (debug,) = (run / "wandb").glob("offline-run-*/logs/debug.log")
    assert f"exitcode: {128 + signal.SIGINT}" in debug.read_text()  # ait's own exit status, not a success


class Recorder(Callback):
    def __init__(self):
        self.calls = []

    def on_run_start(self, info):
        self.calls.append(("start", info.step, info.resumed))

    def on_step(self, step, scalars):
        self.calls.append(("step", step, sorted(scalars)))

    def on_epoch_end(self, epoch, record):
        self.calls.append(("epoch", epoch, "test" in record))

    def on_run_end(self, summary):
        self.calls.append(("end", summary["epochs"]))

    def on_run_error(self, error, stopped):
        self.calls.append(("error", type(error).__name__, stopped))

    def close(self):
        self.calls.append(("close",))


def test_callbacks_from_python_and_by_registered_name(tmp_path):
    recorder = Recorder()
    cfg = tiny_config(tmp_path, "baseline", train={"epochs": 2, "log_every": 4})
    train(cfg, tmp_path / "run", callbacks=[recorder])
    kinds = [c[0] for c in recorder.calls]
    assert kinds[0] == "start" and kinds[-2:] == ["end", "close"] and kinds.count("epoch") == 2
    step = next(c for c in recorder.calls if c[0] == "step")
    assert step[1] == 4 and step[2] == ["grad_norm/net0", "images_per_s", "loss/ce/net0", "loss/consistency", "lr"]

    made = []

    @register("test_recorder")
    def make():
        made.append(Recorder())
        return made[-1]

    train({**cfg, "train": {**cfg["train"], "loggers": ["test_recorder"]}}, tmp_path / "named")
    assert made and made[0].calls[-1] == ("close",)


def mlflow_status(run: Path) -> str:
    record = json.loads((run / "mlflow.json").read_text())
    return MlflowClient(tracking_uri=record["tracking_uri"]).get_run(record["run_id"]).info.status


def test_a_failed_run_is_marked_failed_and_a_stopped_one_killed_then_finished_on_resume(tmp_path, monkeypatch):
    cfg = config(tmp_path, ["mlflow"])
    crashed, recorder = tmp_path / "crashed", Recorder()
    crash_in_second_epoch(cfg, crashed, monkeypatch, callbacks=[recorder])
    assert mlflow_status(crashed) == "FAILED" and recorder.calls[-2:] == [("error", "RuntimeError", False), ("close",)]
    stopped, recorder = tmp_path / "stopped", Recorder()
    stop_after_first_epoch(cfg, stopped, monkeypatch, callbacks=[recorder])
    assert mlflow_status(stopped) == "KILLED" and recorder.calls[-2:] == [("error", "RunInterrupted", True), ("close",)]
    train(cfg, stopped, resume=True)
    assert mlflow_status(stopped) == "FINISHED"


def test_a_logger_failing_to_record_the_end_does_not_hide_the_run_s_own_error(capsys):
    from ait.callbacks import Callbacks
    from ait.engine.run import told_how_it_ends

    class Unreachable(Callback):
        def on_run_error(self, error, stopped):
            raise ConnectionError("the tracking server went away")

    after = Recorder()
    with pytest.raises(RunInterrupted):
        with told_how_it_ends(Callbacks([Unreachable(), after])):
            raise RunInterrupted("stopped at epoch 2, step 3", signal.SIGTERM)
    assert after.calls == [("error", "RunInterrupted", True), ("close",)]  # told and closed all the same
    assert "a logger failed to record how the run ended: the tracking server went away" in capsys.readouterr().err


def test_a_callback_that_fails_to_close_leaves_the_others_closed_and_is_said():
    from ait.callbacks import Callbacks

    class BadClose(Callback):
        def close(self):
            raise ConnectionError("the tracking server went away")

    after = Recorder()
    with pytest.raises(ConnectionError, match="went away"):
        Callbacks([BadClose(), after]).close()
    assert after.calls == [("close",)]


def test_unknown_or_missing_loggers_are_refused_as_the_config_is_read():
    with pytest.raises(ConfigError, match=r"train.loggers\[0\]: 'tensorbored' is not a logger: one of csv"):
        load_config({"train": {"loggers": ["tensorbored"]}})

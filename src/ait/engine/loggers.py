"""The built-in loggers of ``train.loggers`` (:data:`ait.callbacks.BUILTIN`), each a Callback.

Every logger writes into the run directory (or where its library is told to) and continues the
same logged run when the run is resumed, so its curves have no repeated steps:

========== ============================== ===================================================
logger     where                          on resume from global step S
========== ============================== ===================================================
csv        RUN_DIR/metrics.csv (long:     rows after S are dropped, the file goes on
           step, epoch, metric, value)
tensorboard RUN_DIR/tensorboard/          the same directory; events after S are purged
mlflow     $MLFLOW_TRACKING_URI, else     the same run id (RUN_DIR/mlflow.json); steps it
           sqlite:///RUN_DIR/mlflow.db    already holds are not logged again
wandb      RUN_DIR/wandb/ (offline unless an offline run cannot resume: a new run, whose
           WANDB_MODE says otherwise)     config names the one it continues (resumed_from)
========== ============================== ===================================================

A resumed run recomputes the steps after its checkpoint exactly, so skipping what was logged
already (MLflow) and dropping it to log again (CSV, TensorBoard) give the same curve.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from pathlib import Path
from typing import Any

from ait import callbacks
from ait.callbacks import Callback, Callbacks, RunInfo
from ait.config import flatten
from ait.runtime.files import atomic_write, write_json


def flat(config: dict[str, Any]) -> dict[str, Any]:
    """The config as hyperparameters, {"optim.lr": 0.1, ...}: numbers, strings and booleans as they
    are, lists (and nulls) as JSON text, which the trackers take."""
    return {k: v if isinstance(v, (int, float, str, bool)) else json.dumps(v) for k, v in flatten(config).items()}


def epoch_scalars(record: dict[str, Any]) -> dict[str, float]:
    """The numbers of a metrics.jsonl record as scalars: {"epoch/lr": ..., "epoch/train_ce/net0": ...,
    "epoch/test/net0/top1": ...} (a list holds one value per network)."""
    out: dict[str, float] = {}

    def walk(name: str, value: Any) -> None:
        if isinstance(value, bool) or value is None:
            return
        if isinstance(value, (int, float)):
            out[name] = float(value)
        elif isinstance(value, list):
            for k, v in enumerate(value):
                walk(f"{name}/net{k}", v)
        elif isinstance(value, dict):
            for k, v in value.items():
                walk(f"{name}/{k}", v)

    for key, value in record.items():
        if key != "epoch":
            walk(f"epoch/{key}", value)
    return out


class CSVLogger(Callback):
    """RUN_DIR/metrics.csv in long form (step, epoch, metric, value): ``pandas.read_csv`` loads it."""

    FIELDS = ("step", "epoch", "metric", "value")

    def on_run_start(self, info: RunInfo) -> None:
        self.path, self.steps_per_epoch = info.run_dir / "metrics.csv", info.steps_per_epoch
        kept = []
        if info.resumed and self.path.is_file():
            with self.path.open(newline="") as f:
                kept = [row for row in csv.DictReader(f) if int(row["step"]) <= info.step]
        text = io.StringIO()
        writer = csv.DictWriter(text, self.FIELDS)
        writer.writeheader()
        writer.writerows(kept)
        atomic_write(self.path, lambda f: f.write(text.getvalue().encode()))
        self.file = self.path.open("a", newline="")
        self.writer = csv.DictWriter(self.file, self.FIELDS)

    def _write(self, step: int, scalars: dict[str, float]) -> None:
        epoch = step / self.steps_per_epoch
        self.writer.writerows(
            {"step": step, "epoch": f"{epoch:.4f}", "metric": k, "value": v} for k, v in scalars.items()
        )
        self.file.flush()

    def on_step(self, step: int, scalars: dict[str, float]) -> None:
        self._write(step, scalars)

    def on_epoch_end(self, epoch: int, record: dict[str, Any]) -> None:
        self._write((epoch + 1) * self.steps_per_epoch, epoch_scalars(record))

    def close(self) -> None:
        if getattr(self, "file", None) is not None:
            self.file.close()
            self.file = None


class TensorBoardLogger(Callback):
    """RUN_DIR/tensorboard/: scalars by global step, the config as text and hyperparameters."""

    def on_run_start(self, info: RunInfo) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.steps_per_epoch = info.steps_per_epoch
        # purge_step: events at or after it, written before the run stopped, are hidden.
        purge = info.step + 1 if info.resumed else None
        self.writer = SummaryWriter(log_dir=str(info.run_dir / "tensorboard"), purge_step=purge)
        if not info.resumed:
            import yaml

            self.writer.add_text("config", "```yaml\n" + yaml.safe_dump(info.config, sort_keys=False) + "```", 0)
            self._hparams(info.config)

    def _hparams(self, config: dict[str, Any]) -> None:
        from torch.utils.tensorboard.summary import hparams

        networks = (config.get("strategy") or {}).get("networks") or [None]
        metrics = {f"epoch/test/net{k}/top1": 0.0 for k in range(len(networks))}  # tags epoch_scalars writes
        for summary in hparams(flat(config), metrics):
            self.writer.file_writer.add_summary(summary)

    def on_step(self, step: int, scalars: dict[str, float]) -> None:
        for key, value in scalars.items():
            self.writer.add_scalar(key, value, step)

    def on_epoch_end(self, epoch: int, record: dict[str, Any]) -> None:
        self.on_step((epoch + 1) * self.steps_per_epoch, epoch_scalars(record))
        self.writer.flush()

    def close(self) -> None:
        if getattr(self, "writer", None) is not None:
            self.writer.close()
            self.writer = None


def absolute_uri(uri: str | None) -> str | None:
    """An MLflow tracking URI that names the same store from any working directory: a plain path,
    a ``file:`` URI or a relative ``sqlite:///`` path made absolute (a resume may start elsewhere:
    a SLURM requeue, another shell); any other scheme (http, databricks, ...) as it is."""
    if not uri or uri in ("databricks", "databricks-uc"):
        return uri
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        return f"sqlite:///{Path(uri[len('sqlite:///') :]).expanduser().resolve()}"
    if uri.startswith("file:"):
        path = uri[len("file:") :].removeprefix("//localhost").removeprefix("//")
        return Path(path).expanduser().resolve().as_uri()
    if re.match(r"[A-Za-z][\w+.-]*:", uri):  # a scheme of its own
        return uri
    return Path(uri).expanduser().resolve().as_uri()


class LoggerError(RuntimeError):
    """A logger that cannot open its store: named with what it tried, one line."""

    exit_status = 2  # bad setting: a tracking URI, a store the library refuses (ait.cli.run_handler)


class MLflowLogger(Callback):
    """An MLflow run per ait run (experiment: the config's name), resumed by its id."""

    def on_run_start(self, info: RunInfo) -> None:
        try:
            self._start(info)
        except Exception as err:
            if type(err).__module__.split(".")[0] != "mlflow":
                raise
            said = str(err).splitlines()[0][:300] if str(err) else type(err).__name__
            raise LoggerError(f"train.loggers mlflow: cannot open the tracking store ({said})") from None

    def _start(self, info: RunInfo) -> None:
        from mlflow.tracking import MlflowClient

        self.steps_per_epoch, self.record = info.steps_per_epoch, info.run_dir / "mlflow.json"
        saved = json.loads(self.record.read_text()) if info.resumed and self.record.is_file() else None
        uri = (
            saved["tracking_uri"] if saved else absolute_uri(os.environ.get("MLFLOW_TRACKING_URI")) or self._local(info)
        )
        self.client = MlflowClient(tracking_uri=uri)
        self.logged: dict[str, int] = {}  # metric -> the last step the MLflow run holds
        if saved:
            self.run_id = saved["run_id"]
            self.client.update_run(self.run_id, status="RUNNING")
            for key in self.client.get_run(self.run_id).data.metrics:
                history = self.client.get_metric_history(self.run_id, key)
                self.logged[key] = max((m.step for m in history), default=-1)
            return
        experiment = self.client.get_experiment_by_name(info.name)
        experiment_id = experiment.experiment_id if experiment else self.client.create_experiment(info.name)
        self.run_id = self.client.create_run(experiment_id, run_name=info.run_dir.name).info.run_id
        write_json(self.record, {"tracking_uri": uri, "experiment_id": experiment_id, "run_id": self.run_id})
        self._params(info.config)

    @staticmethod
    def _local(info: RunInfo) -> str:
        return f"sqlite:///{(info.run_dir / 'mlflow.db').resolve()}"

    def _params(self, config: dict[str, Any]) -> None:
        from mlflow.entities import Param

        params = [Param(k, str(v)[:6000]) for k, v in flat(config).items()]
        for start in range(0, len(params), 100):  # MLflow takes at most 100 params a batch
            self.client.log_batch(self.run_id, params=params[start : start + 100])

    def on_step(self, step: int, scalars: dict[str, float]) -> None:
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        fresh = [Metric(k, v, now, step) for k, v in scalars.items() if step > self.logged.get(k, -1)]
        if fresh:
            self.client.log_batch(self.run_id, metrics=fresh)

    def on_epoch_end(self, epoch: int, record: dict[str, Any]) -> None:
        self.on_step((epoch + 1) * self.steps_per_epoch, epoch_scalars(record))

    def on_run_end(self, summary: dict[str, Any]) -> None:
        self._end("FINISHED")

    def on_run_error(self, error: BaseException, stopped: bool) -> None:
        self._end("KILLED" if stopped else "FAILED")  # either way a resume sets it running again

    def close(self) -> None:
        self._end("KILLED")  # left open by whoever drove the callback: it did not finish

    def _end(self, status: str) -> None:
        if getattr(self, "client", None) is not None and not getattr(self, "ended", False):
            self.client.set_terminated(self.run_id, status)
            self.ended = True


class WandbLogger(Callback):
    """A Weights & Biases run in RUN_DIR/wandb/, offline unless WANDB_MODE says otherwise."""

    def on_run_start(self, info: RunInfo) -> None:
        import wandb

        self.steps_per_epoch, record = info.steps_per_epoch, info.run_dir / "wandb.json"
        mode = os.environ.get("WANDB_MODE", "offline")
        previous = json.loads(record.read_text()) if info.resumed and record.is_file() else None
        config = dict(info.config)
        kwargs: dict[str, Any] = {}
        if previous and mode == "online":
            kwargs = {"id": previous["id"], "resume": "allow"}
        elif previous:  # an offline run cannot be resumed: a new one that says which it continues
            config["resumed_from"] = previous["id"]
        self.run = wandb.init(
            project=info.name, name=info.run_dir.name, dir=str(info.run_dir), mode=mode, config=config, **kwargs
        )
        write_json(record, {"id": self.run.id, "mode": mode, "resumed_from": config.get("resumed_from")})

    def on_step(self, step: int, scalars: dict[str, float]) -> None:
        self.run.log(dict(scalars), step=step)

    def on_epoch_end(self, epoch: int, record: dict[str, Any]) -> None:
        self.run.log(epoch_scalars(record), step=(epoch + 1) * self.steps_per_epoch)

    def on_run_end(self, summary: dict[str, Any]) -> None:
        self.run.summary.update({f"final/{n['key']}": n["final_top1"] for n in summary.get("networks", [])})
        self.exit_code = 0

    def on_run_error(self, error: BaseException, stopped: bool) -> None:
        if getattr(self, "run", None) is None:
            return
        if stopped:  # W&B's own state for a run that will be resumed
            self.run.mark_preempting()
        # ait's exit status: 128 + N for signal N (a second Ctrl-C, KeyboardInterrupt: 130), else 1
        self.exit_code = 130 if isinstance(error, KeyboardInterrupt) else getattr(error, "exit_status", 1)

    def close(self) -> None:
        if getattr(self, "run", None) is not None:
            # A run that did not reach its end (an error, a signal) is not marked a success.
            self.run.finish(exit_code=getattr(self, "exit_code", 1))
            self.run = None


LOGGERS = {"csv": CSVLogger, "tensorboard": TensorBoardLogger, "mlflow": MLflowLogger, "wandb": WandbLogger}


def build(names: list[str], extra: list[Callback] = ()) -> Callbacks:
    """The callbacks of ``train.loggers`` (built-in or registered), then ``extra`` (from Python)."""
    made = [LOGGERS[n]() if n in LOGGERS else callbacks.registered(n)() for n in names]
    return Callbacks(made + list(extra))

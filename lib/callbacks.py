"""Callbacks that make a run resumable and fully visible in TensorBoard."""

from __future__ import annotations

import logging
import math
import signal
import threading
import time
from pathlib import Path
from typing import Any

import keras

from kerasjobs.errors import PreemptedError
from kerasjobs.layout import RunPaths
from kerasjobs.records import read_json, write_csv_atomic, write_json_atomic

logger = logging.getLogger(__name__)

HISTORY_COLUMNS = [
    "epoch",
    "loss",
    "accuracy",
    "val_loss",
    "val_accuracy",
    "learning_rate",
    "seconds",
]


def _plain(value: Any) -> Any:
    """A JSON-friendly Python number for a metric value, tensor or variable."""
    if hasattr(value, "numpy"):
        value = value.numpy()
    try:
        number = float(value)
    except (TypeError, ValueError):
        return value
    return number if math.isfinite(number) else None


def monitor_mode(monitor: str) -> str:
    """Whether the monitored metric is better high ("max") or low ("min")."""
    return "max" if "acc" in monitor else "min"


class BestCheckpoint(keras.callbacks.ModelCheckpoint):
    """ModelCheckpoint (best only) that survives restarts and kills.

    Keras' ModelCheckpoint forgets its best value on restart and would then
    overwrite a better file; here the best value is kept in best.json and fed
    back through `initial_value_threshold`. The model is written to a partial
    file and renamed over best.keras, so a kill mid-write never corrupts it.
    best.json is written before the rename: if a kill falls between the two,
    the recorded best is higher than the file's, which can only make later
    saves stricter, never let a worse model in.
    """

    def __init__(self, paths: RunPaths, monitor: str) -> None:
        record = read_json(paths.best_record) or {}
        recorded = record.get("value") if record.get("monitor") == monitor else None
        super().__init__(
            filepath=str(paths.best_model_partial),
            monitor=monitor,
            mode=monitor_mode(monitor),
            save_best_only=True,
            initial_value_threshold=recorded,
        )
        self.paths = paths

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        previous = self.best
        super().on_epoch_end(epoch, logs)
        if self.best == previous or not self.paths.best_model_partial.exists():
            return
        write_json_atomic(
            self.paths.best_record,
            {"monitor": self.monitor, "value": _plain(self.best), "epoch": epoch + 1},
        )
        self.paths.best_model_partial.replace(self.paths.best_model)
        logger.info(
            "epoch %d: %s improved to %.4f, saved %s",
            epoch + 1,
            self.monitor,
            self.best,
            self.paths.best_model,
        )


class RunRecorder(keras.callbacks.Callback):
    """Keeps state.json and history.csv, and carries callback state over resumes.

    Put it after BackupAndRestore and EarlyStopping in the callback list: it
    reads the epoch BackupAndRestore restored, cuts the history back to it and
    gives EarlyStopping the wait counter and best value it had at that epoch
    (BackupAndRestore restores weights, optimizer and epoch only).
    """

    def __init__(self, paths: RunPaths, early_stopping: keras.callbacks.EarlyStopping):
        super().__init__()
        self.paths = paths
        self.early_stopping = early_stopping
        self.state: dict[str, Any] = read_json(paths.state) or {"history": []}
        self._epoch_started = 0.0

    @property
    def resumed_from(self) -> int:
        return int(self.state.get("resumed_from", 0))

    def on_train_begin(self, logs: dict | None = None) -> None:
        # BackupAndRestore stores the restored epoch on this private attribute;
        # model.fit() itself starts from it.
        initial_epoch = int(getattr(self.model, "_initial_epoch", None) or 0)
        history = [
            row for row in self.state["history"] if row["epoch"] <= initial_epoch
        ]
        self.state["history"] = history
        self.state["resumed_from"] = initial_epoch
        if initial_epoch and history:
            last = history[-1]
            self.early_stopping.wait = int(last["early_stopping_wait"])
            self.early_stopping.best = last["early_stopping_best"]
            self.early_stopping.best_epoch = int(last["early_stopping_best_epoch"])
            logger.info("resuming after epoch %d of a killed run", initial_epoch)
        self._save()

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._epoch_started = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        row = {key: _plain(value) for key, value in (logs or {}).items()}
        row.update(
            epoch=epoch + 1,
            learning_rate=_plain(self.model.optimizer.learning_rate),
            seconds=round(time.perf_counter() - self._epoch_started, 4),
            early_stopping_wait=self.early_stopping.wait,
            early_stopping_best=_plain(self.early_stopping.best),
            early_stopping_best_epoch=self.early_stopping.best_epoch,
        )
        self.state["history"].append(row)
        self._save()

    def mark_fit_complete(self, stopped_early: bool) -> None:
        self.state["fit_complete"] = True
        self.state["stopped_early"] = stopped_early
        self._save()

    def _save(self) -> None:
        write_json_atomic(self.paths.state, self.state)
        write_csv_atomic(self.paths.history, self.state["history"], HISTORY_COLUMNS)


class OpGraphWriter(keras.callbacks.Callback):
    """Writes the model's TensorFlow op graph for TensorBoard's Graphs page.

    Keras 3's TensorBoard callback writes only the conceptual Keras graph
    (tag "keras"); this traces one forward pass as a tf.function and exports
    the op graph next to it, in the same run folder.
    """

    def __init__(self, log_dir: Path) -> None:
        super().__init__()
        self.log_dir = log_dir

    def on_train_begin(self, logs: dict | None = None) -> None:
        import tensorflow as tf

        sample = tf.zeros((1, *self.model.inputs[0].shape[1:]), dtype="float32")
        forward = tf.function(lambda images: self.model(images, training=False))
        writer = tf.summary.create_file_writer(str(self.log_dir))
        tf.summary.trace_on(graph=True)
        forward(sample)
        with writer.as_default():
            # Named to sort before the Keras callback's "keras" tag, so the Graphs
            # page opens on the op graph.
            tf.summary.trace_export(name="graph", step=0)
        writer.close()


class GracefulStop(keras.callbacks.Callback):
    """Turns SIGTERM into a clean stop at the next batch boundary.

    Kubernetes sends SIGTERM before it preempts or evicts a pod, then SIGKILL
    after the grace period. Raising from a batch callback stops fit() between
    steps, never in the middle of writing a checkpoint or a backup, so the
    last finished epoch's backup stays intact for the rerun.
    """

    def __init__(self) -> None:
        super().__init__()
        self.requested = False
        self._previous: Any = None

    def install(self) -> None:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGTERM, self._request)

    def uninstall(self) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)
            self._previous = None

    def _request(self, signum: int, frame: Any) -> None:
        logger.warning("SIGTERM received: stopping at the next batch boundary")
        self.requested = True

    def check(self) -> None:
        if self.requested:
            raise PreemptedError(
                "stopped by SIGTERM; progress up to the last finished epoch is "
                "saved: rerun the same command to resume"
            )

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self.check()

    def on_test_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self.check()

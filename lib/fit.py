"""The TensorFlow side of the train job: compile, callbacks, fit, evaluate."""

from __future__ import annotations

import logging
import time
from typing import Any

import keras
import tensorflow as tf
from tensorflow.python.framework import config as tf_config

from kerasjobs.callbacks import (
    BestCheckpoint,
    GracefulStop,
    OpGraphWriter,
    RunRecorder,
    monitor_mode,
)
from kerasjobs.config import TrainConfig
from kerasjobs.data import Dataset, make_tf_dataset
from kerasjobs.devices import Placement, place, split_cpu
from kerasjobs.errors import RunError
from kerasjobs.layout import RunPaths
from kerasjobs.models import build_model
from kerasjobs.records import read_json
from kerasjobs.schedules import learning_rate
from kerasjobs.train import progress_verbosity

logger = logging.getLogger(__name__)

JIT_SETTINGS = {"auto": "auto", "on": True, "off": False}


def seed_everything(seed: int, jit_compile: str) -> None:
    """Seed Python, NumPy and TensorFlow; on CPUs, make ops deterministic.

    Deterministic ops make a CPU run reproducible bit for bit, but Keras then
    refuses XLA (not every XLA op is deterministic), so determinism is on only
    on CPUs and when XLA was not asked for explicitly. On GPUs speed wins.
    """
    keras.utils.set_random_seed(seed)
    deterministic = not tf.config.list_physical_devices("GPU") and jit_compile != "on"
    if deterministic:
        tf.config.experimental.enable_op_determinism()
    else:
        # TensorFlow has no public switch back; a later run in the same
        # process must not inherit an earlier run's setting.
        tf_config.disable_op_determinism()


def build_compiled_model(
    config: TrainConfig, dataset: Dataset
) -> tuple[keras.Model, Placement]:
    """Seed, then build the model for this data, placed and compiled."""
    split_cpu(config.cpu_replicas)
    seed_everything(config.seed, config.jit_compile)
    placement = place(config.strategy, config.mixed_precision)
    keras.mixed_precision.set_global_policy(placement.precision_policy)
    try:
        with placement.strategy.scope():
            model = build_model(config.model, dataset.input_shape, dataset.num_classes)
            model.compile(
                optimizer=keras.optimizers.Adam(config.schedule.learning_rate),
                loss="sparse_categorical_crossentropy",
                metrics=["accuracy"],
                steps_per_execution=config.steps_per_execution,
                jit_compile=JIT_SETTINGS[config.jit_compile],
            )
    finally:
        # The layers keep their policy; later models in this process start
        # from float32 again.
        keras.mixed_precision.set_global_policy("float32")
    return model, placement


def make_callbacks(
    config: TrainConfig, paths: RunPaths
) -> tuple[list[keras.callbacks.Callback], RunRecorder, keras.callbacks.EarlyStopping]:
    """The callback list, in the order resuming needs."""
    early_stopping = keras.callbacks.EarlyStopping(
        monitor=config.monitor,
        mode=monitor_mode(config.monitor),
        patience=config.patience,
        restore_best_weights=True,
    )
    recorder = RunRecorder(paths, early_stopping)
    callbacks = [
        # First, so every later callback sees the restored epoch and weights.
        keras.callbacks.BackupAndRestore(str(paths.backup), double_checkpoint=True),
        keras.callbacks.LearningRateScheduler(
            lambda epoch: learning_rate(epoch, config.schedule, config.epochs)
        ),
        BestCheckpoint(paths, config.monitor),
        early_stopping,
        recorder,
        keras.callbacks.TensorBoard(
            log_dir=str(paths.logs),
            histogram_freq=config.histogram_freq,
            write_graph=True,
        ),
        OpGraphWriter(paths.logs / "train"),
    ]
    return callbacks, recorder, early_stopping


def fit_model(
    config: TrainConfig,
    dataset: Dataset,
    model: keras.Model,
    global_batch: int,
    paths: RunPaths,
) -> tuple[dict[str, Any], float]:
    """Fit the model, resuming a killed run; return its state and the seconds.

    Raises:
        PreemptedError: SIGTERM arrived; the last finished epoch is saved.
    """
    train = make_tf_dataset(dataset.x_train, dataset.y_train, global_batch, config.seed)
    validation = make_tf_dataset(dataset.x_val, dataset.y_val, global_batch)
    callbacks, recorder, early_stopping = make_callbacks(config, paths)
    stopper = GracefulStop()
    stopper.install()
    started = time.perf_counter()
    try:
        model.fit(
            train,
            validation_data=validation,
            epochs=config.epochs,
            callbacks=[*callbacks, stopper],
            shuffle=False,  # the tf.data pipeline shuffles
            verbose=progress_verbosity(config.verbose),
        )
    finally:
        stopper.uninstall()
    stopper.check()

    recorder.mark_fit_complete(stopped_early=early_stopping.stopped_epoch > 0)
    return recorder.state, time.perf_counter() - started


def fit_and_evaluate(
    config: TrainConfig,
    dataset: Dataset,
    model: keras.Model,
    placement: Placement,
    paths: RunPaths,
) -> dict[str, Any]:
    """Fit (or resume) the model, then evaluate the best checkpoint on test."""
    # Each replica gets --batch-size samples a step.
    global_batch = config.batch_size * placement.replicas
    if placement.replicas > 1:
        logger.info(
            "global batch %d = %d per replica x %d replicas",
            global_batch,
            config.batch_size,
            placement.replicas,
        )
    state, fit_seconds = read_json(paths.state) or {}, 0.0
    if not state.get("fit_complete"):
        state, fit_seconds = fit_model(config, dataset, model, global_batch, paths)

    if not paths.best_model.exists():
        raise RunError(
            f"training ended without a best model in {paths.checkpoints}: "
            f"{config.monitor} was never reported; check --monitor"
        )
    best = keras.models.load_model(paths.best_model)
    test = make_tf_dataset(dataset.x_test, dataset.y_test, global_batch)
    scores = best.evaluate(test, verbose=0, return_dict=True)
    record = read_json(paths.best_record) or {}
    history = state.get("history", [])
    return {
        **placement.describe(),
        "global_batch_size": global_batch,
        "jit_compile": bool(model.jit_compile),
        "monitor": config.monitor,
        "best_value": record.get("value"),
        "best_epoch": record.get("epoch"),
        "test_loss": float(scores["loss"]),
        "test_accuracy": float(scores["accuracy"]),
        "epochs_run": len(history),
        "stopped_early": bool(state.get("stopped_early")),
        "resumed_from_epoch": state.get("resumed_from", 0),
        "fit_seconds_this_attempt": round(fit_seconds, 3),
        "train_seconds_total": round(sum(r.get("seconds", 0) for r in history), 3),
    }

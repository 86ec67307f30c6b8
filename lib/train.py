"""The train job: data, model, callbacks, fit, evaluate, record."""

from __future__ import annotations

import logging
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kerasjobs.config import TrainConfig
from kerasjobs.data import Dataset, load_dataset
from kerasjobs.errors import InputError, PreemptedError
from kerasjobs.layout import Layout, RunPaths
from kerasjobs.locking import exclusive
from kerasjobs.models import resolve_builder
from kerasjobs.records import (
    git_commit,
    library_versions,
    read_json,
    utc_now,
    write_json_atomic,
)
from kerasjobs.schedules import check_schedule

logger = logging.getLogger(__name__)

# Keras 3's model.fit under MultiWorkerMirroredStrategy fails on the
# TensorFlow backend with "Attempt to convert a value (PerReplica ...) with an
# unsupported type".
MULTI_WORKER_ISSUE = "https://github.com/keras-team/keras/issues/20585"


@dataclass(frozen=True)
class TrainResult:
    """What a finished run reports."""

    run: RunPaths
    metrics: dict[str, Any]
    already_finished: bool = False


def check_config(config: TrainConfig) -> None:
    """Raise InputError for options no run can use."""
    for name in ("epochs", "batch_size", "steps_per_execution"):
        value = getattr(config, name)
        if value < 1:
            flag = "--" + name.replace("_", "-")
            raise InputError(f"{flag} must be a positive integer, got {value}")
    if config.patience < 0:
        raise InputError(f"--patience must be 0 or more, got {config.patience}")
    check_schedule(config.schedule, config.epochs)
    if config.strategy == "multi-worker":
        raise InputError(
            "--strategy multi-worker is not supported: Keras 3's model.fit "
            "fails under MultiWorkerMirroredStrategy on TensorFlow "
            f"({MULTI_WORKER_ISSUE}); use mirrored on one node with several GPUs"
        )


def prepare_run(config: TrainConfig, layout: Layout) -> tuple[RunPaths, bool]:
    """The run's folder, and whether that run already finished.

    Raises:
        InputError: a run of that name exists with different options.
    """
    paths = layout.run(config.resolved_run_name)
    if config.overwrite and paths.directory.exists():
        shutil.rmtree(paths.directory)
    record = read_json(paths.config)
    if record is not None and record.get("run_id") != config.run_id():
        raise InputError(
            f"run {paths.name!r} already exists with other options: pass "
            "another --run-name, or --overwrite to replace it"
        )
    metrics = read_json(paths.metrics) or {}
    return paths, metrics.get("status") == "finished"


def write_config(config: TrainConfig, paths: RunPaths, dataset: Dataset) -> None:
    """Save the resolved options and everything needed to reproduce the run."""
    if paths.config.exists():
        return
    record = config.to_dict()
    record.update(
        run_name=paths.name,
        run_id=config.run_id(),
        created_at=utc_now(),
        versions=library_versions(),
        git_commit=git_commit(),
        data={
            "input_shape": list(dataset.input_shape),
            "num_classes": dataset.num_classes,
            "class_names": list(dataset.class_names),
            "train_rows": len(dataset.y_train),
            "validation_rows": len(dataset.y_val),
            "test_rows": len(dataset.y_test),
        },
    )
    write_json_atomic(paths.config, record)


def progress_verbosity(setting: str) -> int:
    """Keras verbosity: a progress bar on a terminal, one line per epoch else."""
    if setting == "bar":
        return 1
    if setting == "line":
        return 2
    return 1 if sys.stdout.isatty() else 2


def run_training(config: TrainConfig) -> TrainResult:
    """Train, checkpoint and evaluate one run; resume it if it was killed.

    Raises:
        InputError: bad options or data (nothing is written then).
        RunError: the run could not be carried out.
    """
    # Check everything the user gave before anything is written.
    check_config(config)
    resolve_builder(config.model)
    layout = Layout(config.root)
    layout.ensure_writable()
    dataset = load_dataset(
        config.dataset, layout.datasets, config.validation_split, config.seed
    )
    paths, finished = prepare_run(config, layout)
    if finished:
        logger.info("run %s already finished; --overwrite trains it again", paths.name)
        return TrainResult(paths, read_json(paths.metrics) or {}, True)

    from kerasjobs import fit

    model, placement = fit.build_compiled_model(config, dataset)

    busy = (
        f"run {paths.name!r} is being trained by another process: wait for it, "
        "or pass another --run-name"
    )
    with exclusive(paths.lock, busy):
        write_config(config, paths, dataset)
        started = time.perf_counter()
        status = {"status": "running", "started_at": utc_now()}
        write_json_atomic(paths.metrics, status)
        try:
            summary = fit.fit_and_evaluate(config, dataset, model, placement, paths)
        except BaseException as error:
            # A kill (SIGKILL) never gets here and leaves "running"; any other
            # end but success is recorded as failed or preempted, never finished.
            preempted = isinstance(error, PreemptedError)
            status.update(
                status="preempted" if preempted else "failed",
                error=f"{type(error).__name__}: {error}",
            )
            write_json_atomic(paths.metrics, status)
            raise
        metrics = {
            **status,
            **summary,
            "status": "finished",
            "finished_at": utc_now(),
            "seconds_this_attempt": round(time.perf_counter() - started, 3),
        }
        write_json_atomic(paths.metrics, metrics)
    return TrainResult(paths, metrics)


def describe(result: TrainResult) -> str:
    """The one-line summary printed at the end of a run."""
    metrics = result.metrics
    prefix = "already finished: " if result.already_finished else ""
    return (
        f"{prefix}run {result.run.name}: test accuracy "
        f"{metrics.get('test_accuracy', float('nan')):.4f}, best "
        f"{metrics.get('monitor')} {metrics.get('best_value', float('nan')):.4f} "
        f"at epoch {metrics.get('best_epoch')}; best model "
        f"{Path(result.run.best_model)}"
    )

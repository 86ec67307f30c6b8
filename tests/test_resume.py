"""Killed runs resume: SIGKILL mid-training, SIGTERM from Kubernetes."""

from __future__ import annotations

import signal
import time

import pytest

from tests.conftest import (
    history_epochs,
    our_lines,
    read_json,
    rerun,
    start_training,
    wait_for_epochs,
)


def test_sigkill_then_rerun_resumes_and_never_loses_the_best(tmp_path):
    run = tmp_path / "killed"
    process = start_training(tmp_path)
    wait_for_epochs(run, 3, process)
    process.kill()
    process.wait(timeout=30)
    best_before = read_json(run / "checkpoints" / "best.json")["value"]
    assert read_json(run / "metrics.json")["status"] == "running"

    finished = rerun(tmp_path)
    assert finished.returncode == 0, finished.stderr
    assert "resuming after epoch" in finished.stderr

    metrics = read_json(run / "metrics.json")
    assert metrics["status"] == "finished"
    assert metrics["resumed_from_epoch"] >= 3
    # Every epoch exactly once, in order, although the first attempt was killed.
    assert history_epochs(run) == list(range(1, 13))
    assert metrics["best_value"] >= best_before
    # The backup folder is private to the run and removed once it finished.
    assert not (run / "backup").exists()


def test_sigterm_saves_and_exits_promptly_then_resumes(tmp_path):
    run = tmp_path / "killed"
    process = start_training(tmp_path)
    wait_for_epochs(run, 2, process)
    sent = time.monotonic()
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=30)
    assert time.monotonic() - sent < 10
    assert process.returncode == 143, stderr
    assert "Traceback" not in stderr
    assert "rerun the same command to resume" in our_lines(stderr)[-1]

    assert read_json(run / "metrics.json")["status"] == "preempted"
    assert (run / "backup" / "training_metadata.json").exists()

    finished = rerun(tmp_path)
    assert finished.returncode == 0, finished.stderr
    assert read_json(run / "metrics.json")["resumed_from_epoch"] >= 2
    assert history_epochs(run) == list(range(1, 13))


def test_best_checkpoint_keeps_a_recorded_best_across_restarts(tmp_path):
    """A restarted ModelCheckpoint must not replace a better file."""
    import keras
    import numpy as np

    from kerasjobs.callbacks import BestCheckpoint
    from kerasjobs.layout import RunPaths
    from kerasjobs.records import write_json_atomic

    paths = RunPaths(tmp_path / "run")
    paths.checkpoints.mkdir(parents=True)
    paths.best_model.write_bytes(b"the better model")
    write_json_atomic(
        paths.best_record, {"monitor": "val_accuracy", "value": 0.99, "epoch": 4}
    )
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)])
    model.compile(loss="mse")
    checkpoint = BestCheckpoint(paths, "val_accuracy")
    checkpoint.set_model(model)

    checkpoint.on_epoch_end(4, {"val_accuracy": 0.90})
    assert paths.best_model.read_bytes() == b"the better model"

    checkpoint.on_epoch_end(5, {"val_accuracy": np.float32(0.995)})
    assert read_json(paths.best_record) == {
        "monitor": "val_accuracy", "value": pytest.approx(0.995), "epoch": 6
    }  # fmt: skip
    assert keras.models.load_model(paths.best_model).count_params() == 6

"""The train job end to end: accuracy, records, schedule, early stopping."""

from __future__ import annotations

import csv
import subprocess
import sys

import numpy as np
import pytest
from tensorboard.backend.event_processing import event_accumulator

from kerasjobs.config import ScheduleConfig
from kerasjobs.data import load_dataset
from kerasjobs.layout import Layout
from kerasjobs.schedules import learning_rate
from tests.conftest import invoke, read_json


def scalar_series(log_dir, tag: str) -> dict[int, float]:
    """Epoch -> value of a scalar the TensorBoard callback wrote."""
    accumulator = event_accumulator.EventAccumulator(
        str(log_dir), size_guidance={event_accumulator.TENSORS: 0}
    )
    accumulator.Reload()
    return {
        event.step: float(np.asarray(event.tensor_proto.float_val or [0])[0])
        if event.tensor_proto.float_val
        else float(
            np.frombuffer(event.tensor_proto.tensor_content, dtype=np.float32)[0]
        )
        for event in accumulator.Tensors(tag)
    }


def test_default_run_is_accurate_and_its_best_model_reproduces(trained_root):
    run = Layout(trained_root).run("digits")
    metrics = read_json(run.metrics)
    config = read_json(run.config)

    assert metrics["status"] == "finished"
    assert metrics["test_accuracy"] >= 0.90
    assert config["seed"] == 0 and config["versions"]["tensorflow"].startswith("2.21")

    # The saved best model scores on the validation split what was recorded.
    import keras

    dataset = load_dataset(
        "digits", trained_root / "datasets", config["validation_split"], 0
    )
    model = keras.models.load_model(run.best_model)
    scores = model.evaluate(dataset.x_val, dataset.y_val, verbose=0, return_dict=True)
    assert scores["accuracy"] == pytest.approx(metrics["best_value"], abs=1e-6)


def test_history_and_tensorboard_record_every_epoch(trained_root):
    run = Layout(trained_root).run("digits")
    metrics = read_json(run.metrics)
    with run.history.open() as stream:
        rows = list(csv.DictReader(stream))

    assert [int(row["epoch"]) for row in rows] == list(
        range(1, metrics["epochs_run"] + 1)
    )
    best = max(rows, key=lambda row: float(row["val_accuracy"]))
    assert float(best["val_accuracy"]) == pytest.approx(metrics["best_value"])

    train_logs = run.logs / "train"
    accuracy = scalar_series(train_logs, "epoch_accuracy")
    validation = scalar_series(run.logs / "validation", "epoch_accuracy")
    assert len(accuracy) == len(validation) == metrics["epochs_run"]

    # The Graphs dashboard finds the op graph and the conceptual Keras graph by
    # these plugin names; histograms are there for every weight.
    accumulator = event_accumulator.EventAccumulator(str(train_logs))
    accumulator.Reload()
    plugins = {
        tag: accumulator.SummaryMetadata(tag).plugin_data.plugin_name
        for tag in accumulator.Tags()["tensors"]
    }
    assert plugins["graph"] == "graph_run_metadata_graph"
    assert plugins["keras"] == "graph_keras_model"
    assert plugins["embedding/kernel/histogram"] == "histograms"


@pytest.mark.parametrize(
    ("schedule", "options", "expected"),
    [
        ("step", ["--lr-step-epochs", "2"], [0.01, 0.01, 0.005, 0.005, 0.0025]),
        (
            "exponential",
            ["--warmup-epochs", "2", "--lr-decay-rate", "0.5"],
            [0.005, 0.01, 0.01, 0.005, 0.0025],
        ),
    ],
)
def test_learning_rates_in_tensorboard_follow_the_schedule(
    tmp_path, schedule, options, expected
):
    result = invoke(
        "train", "--root", str(tmp_path), "--run-name", "lr", "--epochs", "5",
        "--patience", "10", "--learning-rate", "0.01", "--lr-schedule", schedule,
        "--histogram-freq", "0", *options,
    )  # fmt: skip
    assert result.exit_code == 0, result.output

    logged = scalar_series(tmp_path / "lr" / "logs" / "train", "epoch_learning_rate")
    assert [logged[epoch] for epoch in sorted(logged)] == pytest.approx(expected)


def test_cosine_schedule_with_warmup():
    schedule = ScheduleConfig(name="cosine", learning_rate=0.1, warmup_epochs=2)
    rates = [learning_rate(epoch, schedule, 6) for epoch in range(6)]
    assert rates == pytest.approx([0.05, 0.1, 0.1, 0.05 * (1 + 2**-0.5), 0.05,
                                   0.05 * (1 - 2**-0.5)])  # fmt: skip
    assert all(isinstance(rate, float) for rate in rates)


def test_early_stopping_ends_a_plateaued_run(tmp_path):
    # A learning rate this small leaves the validation accuracy flat.
    result = invoke(
        "train", "--root", str(tmp_path), "--run-name", "flat", "--epochs", "30",
        "--patience", "2", "--learning-rate", "1e-9", "--histogram-freq", "0",
    )  # fmt: skip
    assert result.exit_code == 0, result.output

    metrics = read_json(tmp_path / "flat" / "metrics.json")
    assert metrics["stopped_early"] is True
    assert metrics["epochs_run"] == 3
    assert metrics["status"] == "finished"


def test_same_seed_same_history_and_env_options_resolve_the_same_run(tmp_path):
    first = invoke("train", "--root", str(tmp_path), "--run-name", "a",
                   "--epochs", "2", "--histogram-freq", "0")  # fmt: skip
    second = invoke("train", "--root", str(tmp_path), "--run-name", "b",
                    "--epochs", "2", "--histogram-freq", "0")  # fmt: skip
    assert first.exit_code == second.exit_code == 0
    assert (tmp_path / "a" / "history.csv").read_text().splitlines()[1].split(",")[
        :5
    ] == (tmp_path / "b" / "history.csv").read_text().splitlines()[1].split(",")[:5]

    # An option from the environment is the same option: a rerun of run "a"
    # with KERASJOBS_TRAIN_EPOCHS=2 finds it finished instead of retraining.
    rerun = subprocess.run(
        [sys.executable, "-m", "kerasjobs", "train", "--root", str(tmp_path),
         "--run-name", "a", "--histogram-freq", "0"],
        env={**__import__("os").environ, "KERASJOBS_TRAIN_EPOCHS": "2"},
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert rerun.returncode == 0, rerun.stderr
    assert "already finished" in rerun.stdout

"""Strategy, mixed precision and XLA switches take effect and still train."""

from __future__ import annotations

import signal

import pytest

from tests.conftest import (
    history_epochs,
    invoke,
    our_lines,
    read_json,
    rerun,
    run_kerasjobs,
    start_training,
    wait_for_epochs,
)


def test_mixed_precision_and_xla_switches_take_effect(tmp_path):
    result = invoke(
        "train", "--root", str(tmp_path), "--run-name", "fast",
        "--mixed-precision", "on", "--jit-compile", "on", "--histogram-freq", "0",
    )  # fmt: skip
    assert result.exit_code == 0, result.output

    metrics = read_json(tmp_path / "fast" / "metrics.json")
    assert metrics["precision_policy"] == "mixed_bfloat16"
    assert metrics["jit_compile"] is True
    assert metrics["test_accuracy"] >= 0.90

    import keras

    model = keras.models.load_model(tmp_path / "fast" / "checkpoints" / "best.keras")
    assert model.get_layer("embedding").dtype_policy.compute_dtype == "bfloat16"
    # The softmax output stays float32 for a numerically sound loss.
    assert model.get_layer("classifier").dtype_policy.name == "float32"


def test_auto_switches_resolve_to_float32_without_gpu(trained_root):
    metrics = read_json(trained_root / "digits" / "metrics.json")
    assert metrics["precision_policy"] == "float32"
    assert metrics["strategy"] == "default" and metrics["replicas"] == 1


def test_mirrored_over_two_logical_cpus_trains(tmp_path):
    result = run_kerasjobs(
        "train", "--root", str(tmp_path), "--run-name", "mirrored",
        "--strategy", "mirrored", "--cpu-replicas", "2", "--batch-size", "128",
        "--histogram-freq", "0",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    metrics = read_json(tmp_path / "mirrored" / "metrics.json")
    assert metrics["replicas"] == 2 and metrics["global_batch_size"] == 256
    assert "global batch 256 = 128 per replica x 2 replicas" in result.stderr
    assert metrics["test_accuracy"] >= 0.90


def test_mirrored_run_resumes_after_sigterm(tmp_path):
    mirrored = ("--strategy", "mirrored", "--cpu-replicas", "2", "--batch-size", "24")
    process = start_training(tmp_path, *mirrored)
    wait_for_epochs(tmp_path / "killed", 2, process)
    process.send_signal(signal.SIGTERM)
    process.communicate(timeout=60)
    assert process.returncode == 143

    finished = rerun(tmp_path, *mirrored)
    assert finished.returncode == 0, finished.stderr
    metrics = read_json(tmp_path / "killed" / "metrics.json")
    assert metrics["replicas"] == 2 and metrics["resumed_from_epoch"] >= 2
    assert history_epochs(tmp_path / "killed") == list(range(1, 13))


@pytest.mark.parametrize("option", ["multi-worker"])
def test_multi_worker_fails_clearly_naming_the_upstream_issue(tmp_path, option):
    result = run_kerasjobs("train", "--root", str(tmp_path), "--strategy", option)
    assert result.returncode == 2
    assert "keras-team/keras/issues/20585" in our_lines(result.stderr)[-1]
    assert "Traceback" not in result.stderr
    assert not list(tmp_path.glob("*/config.json"))

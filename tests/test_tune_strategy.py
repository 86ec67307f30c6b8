"""A worker holding several devices trains each trial with MirroredStrategy."""

from __future__ import annotations

import csv

from tests.conftest import run_kerasjobs


def test_each_trial_trains_mirrored_over_the_workers_devices(tmp_path):
    result = run_kerasjobs(
        "tune", "--root", str(tmp_path), "--project", "mirrored",
        "--max-trials", "2", "--epochs", "2", "--batch-size", "32",
        "--strategy", "mirrored", "--cpu-replicas", "2", "--progress", "line",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert "each trial trains with strategy mirrored over 2 replicas" in result.stderr

    with (tmp_path / "tuning" / "mirrored" / "trials.csv").open() as stream:
        trials = list(csv.DictReader(stream))
    assert [trial["status"] for trial in trials] == ["COMPLETED", "COMPLETED"]
    assert all(float(trial["score"]) > 0.5 for trial in trials)

"""Shared fixtures: run the real CLI, in-process or as a separate process."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

# Quiet, CPU-only TensorFlow in every process the tests start.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

# Small, fast settings shared by the training tests.
FAST_TRAIN = ["--epochs", "6", "--histogram-freq", "1"]


def run_kerasjobs(
    *args: str, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess:
    """Run `python -m kerasjobs ARGS` as a real process and capture its output."""
    return subprocess.run(
        [sys.executable, "-m", "kerasjobs", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        check=False,
    )


def invoke(*args: str):
    """Run the CLI in this process (TensorFlow is imported once per session)."""
    from kerasjobs.jobs.cli import cli

    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result


# A line TensorFlow's C++ runtime logs through absl ("W0000 00:00:..."): it
# can come after our own last line as TensorFlow shuts its threads down.
ABSL_LINE = re.compile(r"^[IWEF]\d{4} \d\d:\d\d:")


def our_lines(stream: str) -> list[str]:
    """The lines of stderr that kerasjobs or Python wrote, not TensorFlow's C++."""
    return [line for line in stream.strip().splitlines() if not ABSL_LINE.match(line)]


def read_json(path: Path) -> dict:
    return json.loads(path.read_text())


@pytest.fixture(scope="session")
def trained_root(tmp_path_factory) -> Path:
    """A root holding one finished default run (digits, MLP)."""
    root = tmp_path_factory.mktemp("trained")
    result = invoke("train", "--root", str(root), "--run-name", "digits", *FAST_TRAIN)
    assert result.exit_code == 0, result.output
    return root


# Small batches and one step per call make epochs slow enough to kill mid-run.
SLOW_EPOCHS = ["--epochs", "12", "--patience", "12", "--batch-size", "8",
               "--steps-per-execution", "1", "--histogram-freq", "0"]  # fmt: skip


def start_training(root: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "kerasjobs", "train", "--root", str(root),
         "--run-name", "killed", *SLOW_EPOCHS, *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )  # fmt: skip


def wait_for_epochs(run: Path, count: int, process: subprocess.Popen) -> dict:
    """Poll state.json until `count` epochs are recorded; return the state."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        try:
            state = json.loads((run / "state.json").read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            state = {"history": []}
        if len(state["history"]) >= count:
            return state
        time.sleep(0.02)
    raise TimeoutError(f"training never reached {count} epochs")


def history_epochs(run: Path) -> list[int]:
    with (run / "history.csv").open() as stream:
        return [int(row["epoch"]) for row in csv.DictReader(stream)]


def rerun(root: Path, *extra: str) -> subprocess.CompletedProcess:
    process = start_training(root, *extra)
    stdout, stderr = process.communicate(timeout=300)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)

"""Shared fixtures: run the real CLI, in-process or as a separate process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
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


def read_json(path: Path) -> dict:
    return json.loads(path.read_text())


@pytest.fixture(scope="session")
def trained_root(tmp_path_factory) -> Path:
    """A root holding one finished default run (digits, MLP)."""
    root = tmp_path_factory.mktemp("trained")
    result = invoke("train", "--root", str(root), "--run-name", "digits", *FAST_TRAIN)
    assert result.exit_code == 0, result.output
    return root

"""The CLI's contract: fast help, one-line errors, no half-written runs."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import our_lines, run_kerasjobs


def test_help_does_not_import_tensorflow():
    probe = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from kerasjobs.jobs.cli import cli\n"
        "jobs = cli.list_commands(None)\n"
        "for args in [['--help']] + [[job, '--help'] for job in jobs]:\n"
        "    assert CliRunner().invoke(cli, args).exit_code == 0, args\n"
        "print(' '.join(jobs), 'tensorflow' in sys.modules, 'keras' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    jobs = "train embed tune fetch tensorboard report"
    assert result.stdout.strip() == f"{jobs} False False"


def write_npz(path, **overrides):
    rng = np.random.default_rng(0)
    arrays = {
        "x_train": rng.integers(0, 255, (40, 8, 8)).astype(np.uint8),
        "y_train": rng.integers(0, 3, 40),
        "x_test": rng.integers(0, 255, (10, 8, 8)).astype(np.uint8),
        "y_test": rng.integers(0, 3, 10),
    }
    arrays.update(overrides)
    np.savez(path, **{key: value for key, value in arrays.items() if value is not None})
    return str(path)


BAD_DATA = {
    "missing key": ({"y_test": None}, "lacks the arrays y_test"),
    "wrong shape": ({"y_train": np.zeros(39, int)}, "one integer label per row"),
    "float labels": ({"y_train": np.zeros(40)}, "expected integer class labels"),
    "negative label": ({"y_test": -np.ones(10, int)}, "labels must be class"),
    "unseen label": ({"y_test": np.full(10, 7)}, "never trained on"),
    "empty": ({"x_train": np.zeros((0, 8, 8)), "y_train": np.zeros(0, int)},
              "non-empty array"),
    "text images": ({"x_train": np.full((40, 8), "a")}, "expected integers"),
}  # fmt: skip


def assert_clean_failure(result, code: int, message: str, root) -> None:
    assert result.returncode == code, result.stderr
    lines = our_lines(result.stderr)
    assert "Traceback" not in result.stderr
    assert lines[-1].startswith("kerasjobs: error:") and message in lines[-1]
    # Nothing that looks like a run was left behind.
    assert not list(root.glob("*/metrics.json")) if root.exists() else True
    assert not list(root.glob("*/config.json")) if root.exists() else True


@pytest.mark.parametrize("case", sorted(BAD_DATA))
def test_malformed_data_file(tmp_path, case):
    overrides, message = BAD_DATA[case]
    data = write_npz(tmp_path / "data.npz", **overrides)
    root = tmp_path / "root"

    result = run_kerasjobs("train", "--root", str(root), "--dataset", data)

    assert_clean_failure(result, 2, message, root)


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--dataset", "cifar"], 2, "unknown dataset 'cifar'"),
        (["--dataset", "/nowhere/data.npz"], 2, "unknown dataset"),
        (["--model", "transformer"], 2, "unknown model 'transformer'"),
        (["--model", "no_such_module:build"], 2, "cannot import 'no_such_module'"),
        (["--epochs", "0"], 2, "Invalid value for '--epochs'"),
        (["--batch-size", "-3"], 2, "Invalid value for '--batch-size'"),
        (["--warmup-epochs", "30"], 2, "--warmup-epochs 30 must be"),
        (["--run-name", "../escape"], 2, "is not a valid name"),
    ],
)
def test_bad_options(tmp_path, args, code, message):
    root = tmp_path / "root"
    result = run_kerasjobs("train", "--root", str(root), *args)
    assert_clean_failure(result, code, message, root)


def test_unwritable_root(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    result = run_kerasjobs("train", "--root", str(blocker / "root"))
    assert_clean_failure(result, 2, "is not writable", tmp_path)


def test_pod_logs_get_one_line_per_epoch(tmp_path):
    result = run_kerasjobs(
        "train", "--root", str(tmp_path), "--epochs", "3", "--histogram-freq", "0"
    )
    assert result.returncode == 0, result.stderr
    epoch_lines = [line for line in result.stdout.splitlines() if " - loss: " in line
                   or "- accuracy:" in line]  # fmt: skip
    assert len(epoch_lines) == 3
    assert "\r" not in result.stdout and "━" not in result.stdout
    assert result.stdout.strip().splitlines()[-1].startswith("run digits-mlp-")

"""kerasjobs report: a real trained run, a real search, and hand-made records."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kerasjobs.layout import Layout
from kerasjobs.records import write_csv_atomic, write_json_atomic, write_text_atomic
from kerasjobs.tune_results import TRIAL_COLUMNS, record_search
from tests.conftest import invoke, read_json, run_kerasjobs

LONG_NAME = "a-run-with-a-really-long-descriptive-name-0123456789-deadbeef"
LONG_DATASET = "/data/somewhere/deep/inside/a/volume/my_own_dataset_v2.npz"
LONG_MODEL = "my_company.vision.models:build_a_residual_network"
THREADS = {"TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1"}


def make_run(root: Path, name: str, created_at: str, metrics: dict | None, **config):
    """A run folder with the records `kerasjobs train` writes, made by hand."""
    paths = Layout(root).run(name)
    record = {"dataset": "digits", "model": "mlp", "epochs": 10, **config}
    write_json_atomic(paths.config, {**record, "created_at": created_at})
    if metrics is not None:
        write_json_atomic(paths.metrics, metrics)
    rows = [
        {"epoch": 1, "val_accuracy": 0.5, "seconds": 61.5},
        {"epoch": 2, "val_accuracy": 0.75, "seconds": 62.0},
    ]
    write_csv_atomic(paths.history, rows, ["epoch", "val_accuracy", "seconds"])


def make_finished_project(root: Path) -> None:
    """A tuning project as lib/tune_results.py leaves a failed-then-done search."""
    paths = Layout(root).tuning_paths("wide-search")
    values = {"units": 256, "learning_rate": 0.0031622776, "tuner/epochs": 4}
    best = {
        "trial_id": "02",
        "objective": "val_loss",
        "direction": "min",
        "score": 0.123456,
        "best_step": 3,
        "hyperparameters": {"units": 256, "learning_rate": 0.0031622776},
        "tuner_values": {"tuner/epochs": 4},
    }
    rows = [
        {"trial_id": "00", "status": "COMPLETED", "score": 0.3},
        {"trial_id": "01", "status": "FAILED", "score": None},
        {"trial_id": "02", "status": "COMPLETED", "score": 0.123456},
        {"trial_id": "03", "status": "INVALID", "score": None},
    ]
    for row in rows:
        row.update(best_step=1, seconds=2.0, runs=1, hyperparameters=json.dumps(values))
    write_csv_atomic(paths.trials_table, rows, TRIAL_COLUMNS)
    write_json_atomic(paths.best_hyperparameters, best)
    settings = {"tuner": "hyperband", "max_trials": 6, "objective": "val_loss"}
    summary = {"trials": {"COMPLETED": 2, "FAILED": 1, "INVALID": 1}, "best": best}
    record_search(paths, "finished", settings, None, summary)
    # Oldest project: created before the real search below.
    record = read_json(paths.search_record)
    write_json_atomic(paths.search_record, {**record, "created_at": "2020-01-01"})


def make_running_project(root: Path) -> None:
    """A search still running: only Keras Tuner's trial.json files count."""
    paths = Layout(root).tuning_paths("live-search")
    settings = {"tuner": "random", "max_trials": 10, "objective": "val_accuracy"}
    record_search(paths, "running", settings)
    trials = {"0": ("COMPLETED", 0.8), "1": ("COMPLETED", 0.9), "2": ("RUNNING", None)}
    for trial_id, (status, score) in trials.items():
        trial = {
            "trial_id": trial_id,
            "status": status,
            "score": score,
            "hyperparameters": {"space": [], "values": {"units": int(trial_id) + 1}},
        }
        write_json_atomic(paths.trial_directory(trial_id) / "trial.json", trial)
    # A trial file caught half written is skipped, not fatal.
    write_text_atomic(paths.trial_directory("3") / "trial.json", '{"trial_id": ')


@pytest.fixture(scope="module")
def report_root(trained_root, tmp_path_factory) -> Path:
    """The trained run, a real two-trial search, and runs in every state."""
    root = tmp_path_factory.mktemp("report")
    shutil.copytree(trained_root / "digits", root / "digits")
    search = run_kerasjobs(
        "tune", "--root", str(root), "--project", "real-search", "--max-trials", "2",
        "--epochs", "1", "--progress", "line", env=THREADS, timeout=240,
    )  # fmt: skip
    assert search.returncode == 0, search.stderr[-3000:]

    make_run(root, "zz-oldest", "2020-01-01T00:00:00+00:00", {"status": "running"})
    make_run(root, "failed-run", "2020-01-02T00:00:00+00:00", {"status": "failed"})
    make_run(
        root, "preempted-run", "2020-01-03T00:00:00+00:00", {"status": "preempted"}
    )
    make_run(root, "created-run", "2020-01-04T00:00:00+00:00", None)
    make_run(
        root, LONG_NAME, "2020-01-05T00:00:00+00:00", {"status": "running"},
        dataset=LONG_DATASET, model=LONG_MODEL,
    )  # fmt: skip
    (root / "datasets").mkdir()
    (root / "not-a-run").mkdir()
    make_finished_project(root)
    make_running_project(root)
    return root


def report(root: Path, *options: str) -> str:
    result = invoke("report", "--root", str(root), *options)
    assert result.exit_code == 0, result.output
    return result.output


def table_rows(text: str, title: str) -> list[list[str]]:
    """The rows (split on runs of 2+ spaces) of the table under `title`."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(title))
    assert set(lines[start + 2].replace(" ", "")) == {"-"}, "no rule under header"
    rows = []
    for line in lines[start + 1 :]:
        if not line.strip():
            break
        rows.append(re.split(r"\s{2,}", line.strip()))
    header, _rule, *body = rows
    return [header] + [row for row in body if len(row) == len(header)]


def test_runs_table_shows_each_runs_records_oldest_first(report_root):
    text = report(report_root)

    header, *rows = table_rows(text, "Runs in")
    assert header == [
        "run", "dataset", "model", "best", "test", "epochs", "time", "status"
    ]  # fmt: skip
    names = [row[0] for row in rows]
    assert names[:4] == ["zz-oldest", "failed-run", "preempted-run", "created-run"]
    assert names[-1] == "digits", "the newest run (created last) comes last"
    assert "not-a-run" not in text and "datasets" not in names

    metrics = read_json(report_root / "digits" / "metrics.json")
    digits = rows[-1]
    assert digits[1:3] == ["digits", "mlp"]
    assert digits[3] == f"{metrics['best_value']:.4f}"
    assert digits[4] == f"{metrics['test_accuracy']:.4f}"
    assert digits[5] == f"{metrics['epochs_run']}/6"
    assert digits[7] == "finished"


def test_unfinished_runs_show_their_status_and_progress(report_root):
    rows = {row[0]: row for row in table_rows(report(report_root), "Runs in")[1:]}

    assert rows["zz-oldest"][3:] == ["0.7500", "-", "2/10", "2m04s", "running"]
    assert rows["failed-run"][-1] == "failed"
    assert rows["preempted-run"][-1] == "preempted"
    assert rows["created-run"][-1] == "created"


def test_every_line_fits_80_columns_and_long_values_are_cut(report_root):
    text = report(report_root)

    assert max(len(line) for line in text.splitlines()) <= 80
    long_row = next(line for line in text.splitlines() if line.startswith("a-run"))
    # The middle of a long name is cut: its distinguishing end stays.
    name = long_row.split("  ")[0]
    assert "…" in name and name.endswith("deadbeef")
    assert "my_own_" in long_row and "/data/somewhere" not in long_row
    assert long_row.rstrip().endswith("running")


def test_tuning_projects_show_counts_best_score_and_hyperparameters(report_root):
    text = report(report_root)

    header, *rows = table_rows(text, "Tuning projects in")
    assert header == [
        "project", "tuner", "state", "trials", "failed", "objective", "best"
    ]  # fmt: skip
    by_name = {row[0]: row for row in rows}
    assert [row[0] for row in rows][0] == "wide-search"
    assert by_name["wide-search"][1:] == [
        "hyperband", "finished", "2/6", "2", "val_loss", "0.1235"
    ]  # fmt: skip
    # A running search is counted from its trial files; best so far is shown.
    assert by_name["live-search"][2:5] == ["running", "2/10", "0"]
    assert by_name["live-search"][6] == "0.9000"

    real = read_json(report_root / "tuning" / "real-search" / "search.json")
    assert by_name["real-search"][2:4] == ["finished", "2/2"]
    assert by_name["real-search"][6] == f"{real['best']['score']:.4f}"
    best_values = " ".join(
        f"{name}={value:.4g}" if isinstance(value, float) else f"{name}={value}"
        for name, value in sorted(real["best"]["hyperparameters"].items())
    )
    assert f"  real-search: {best_values}" in " ".join(text.split("\n"))
    assert "  wide-search: learning_rate=0.003162 units=256" in text
    assert "tuner/epochs" not in text


def markdown_tables(text: str) -> list[list[str]]:
    """Each table: consecutive lines starting with '|'."""
    tables, current = [], []
    for line in text.splitlines() + [""]:
        if line.startswith("|"):
            current.append(line)
        elif current:
            tables.append(current)
            current = []
    return tables


def cells(line: str) -> list[str]:
    assert line.startswith("| ") and line.endswith(" |"), line
    return [cell.strip() for cell in re.split(r"(?<!\\)\|", line[1:-1])]


def test_markdown_has_a_valid_table_per_section_with_full_values(report_root):
    text = report(report_root, "--format", "markdown")

    assert f"## Runs in `{report_root}` (6)" in text
    assert f"## Tuning projects in `{report_root / 'tuning'}` (3)" in text
    tables = markdown_tables(text)
    assert len(tables) == 2
    for table in tables:
        header, separator, *rows = map(cells, table)
        assert all(re.fullmatch(r"---:?", cell) for cell in separator), separator
        assert len(separator) == len(header)
        assert rows and all(len(row) == len(header) for row in rows)
    runs = {row[0]: row for row in map(cells, tables[0][2:])}
    assert runs[LONG_NAME][1:3] == ["my_own_dataset_v2.npz", LONG_MODEL]
    projects = {row[0]: row for row in map(cells, tables[1][2:])}
    assert projects["wide-search"][-1] == "learning_rate=0.003162 units=256"


def test_empty_root_says_how_to_start_and_missing_root_fails(tmp_path):
    text = report(tmp_path)
    assert f"No runs or tuning projects in {tmp_path} yet" in text
    assert f"kerasjobs train --root {tmp_path}" in text

    missing = tmp_path / "nowhere"
    result = run_kerasjobs("report", "--root", str(missing))
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"kerasjobs: error: the root {str(missing)!r} does not exist: pass --root "
        "(or KERASJOBS_ROOT) with the folder your runs are in"
    )


def test_report_and_its_help_never_import_tensorflow(report_root):
    script = (
        "import sys\n"
        "from kerasjobs.jobs.cli import cli\n"
        "cli.main(sys.argv[1:], standalone_mode=False)\n"
        "heavy = sorted({'tensorflow', 'keras', 'keras_tuner'} & set(sys.modules))\n"
        "print('HEAVY', heavy)\n"
    )
    for args in (["report", "--help"], ["report", "--root", str(report_root)]):
        result = subprocess.run(
            [sys.executable, "-c", script, *args],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert "HEAVY []" in result.stdout, result.stdout[-500:]

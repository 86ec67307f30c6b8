"""The at-a-glance view of a shared root: its runs and tuning projects as tables.

Only the JSON and CSV records that the jobs write are read (never TensorFlow),
so a report is quick and safe to run next to jobs that are still writing.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kerasjobs.errors import InputError
from kerasjobs.layout import Layout, RunPaths, TuningPaths
from kerasjobs.records import read_json

logger = logging.getLogger(__name__)

FORMATS = ("table", "markdown")
# Keras Tuner's trial states that count as failed.
_FAILED_TRIALS = ("FAILED", "INVALID")


@dataclass(frozen=True)
class RunRow:
    """One training run as its records describe it (None: not recorded yet)."""

    name: str
    status: str
    created_at: str = ""
    dataset: str = ""
    model: str = ""
    best_accuracy: float | None = None
    test_accuracy: float | None = None
    epochs_run: int | None = None
    epochs: int | None = None
    seconds: float | None = None


@dataclass(frozen=True)
class TuningRow:
    """One tuning project: its search's state, trial counts and best trial."""

    name: str
    state: str
    created_at: str = ""
    tuner: str = ""
    objective: str = ""
    done: int = 0
    failed: int = 0
    max_trials: int | None = None
    best_score: float | None = None
    best_hyperparameters: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Report:
    """Everything under one root, oldest first (then by name)."""

    root: Path
    runs: list[RunRow]
    projects: list[TuningRow]


def _read(path: Path) -> dict[str, Any] | None:
    """A JSON record, or None when it is missing; ValueError when it is broken."""
    record = read_json(path)
    if record is not None and not isinstance(record, dict):
        raise ValueError(f"{path} does not hold a JSON object")
    return record


def _history(path: Path) -> list[dict[str, str]]:
    try:
        with path.open(newline="", encoding="utf-8") as stream:
            return list(csv.DictReader(stream))
    except FileNotFoundError:
        return []


def _numbers(rows: list[dict[str, str]], column: str) -> list[float]:
    values = []
    for row in rows:
        try:
            values.append(float(row[column]))
        except (KeyError, TypeError, ValueError):
            continue
    return values


def read_run(paths: RunPaths) -> RunRow:
    """A run's row from config.json, metrics.json and history.csv."""
    try:
        config = _read(paths.config) or {}
        metrics = _read(paths.metrics)
        history = _history(paths.history)
    except (OSError, ValueError) as error:
        logger.warning("run %s has an unreadable record: %s", paths.name, error)
        return RunRow(paths.name, "unreadable")

    # history.csv holds every finished epoch, also while the run is going.
    accuracies = _numbers(history, "val_accuracy")
    seconds = _numbers(history, "seconds")
    metrics = metrics or {}
    best = max(accuracies) if accuracies else None
    if best is None and metrics.get("monitor") == "val_accuracy":
        best = metrics.get("best_value")
    return RunRow(
        name=paths.name,
        status=metrics.get("status", "created"),
        created_at=str(config.get("created_at", "")),
        dataset=str(config.get("dataset", "")),
        model=str(config.get("model", "")),
        best_accuracy=best,
        test_accuracy=metrics.get("test_accuracy"),
        epochs_run=metrics.get("epochs_run", len(history) if history else None),
        epochs=config.get("epochs"),
        seconds=sum(seconds) if seconds else None,
    )


def _trial_counts(paths: TuningPaths, live: bool) -> tuple[dict[str, int], list]:
    """Trials by status, and (score, values) of completed ones if read live.

    A search still running has written no trials.csv yet (or an old one),
    so its counts come from Keras Tuner's own trial_*/trial.json files.
    """
    counts: dict[str, int] = {}
    scored: list[tuple[float, dict]] = []
    if live or not paths.trials_table.exists():
        for trial_file in sorted(paths.directory.glob("trial_*/trial.json")):
            try:
                trial = _read(trial_file) or {}
            except ValueError:
                # Keras Tuner rewrites these files in place: one may be half
                # written just now. The next report counts it.
                continue
            status = trial.get("status", "UNKNOWN")
            counts[status] = counts.get(status, 0) + 1
            if status == "COMPLETED" and trial.get("score") is not None:
                values = trial.get("hyperparameters", {}).get("values", {})
                scored.append((trial["score"], values))
        return counts, scored
    for row in _history(paths.trials_table):
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    return counts, scored


def read_project(paths: TuningPaths) -> TuningRow:
    """A tuning project's row from search.json, trials.csv and the best trial."""
    try:
        search = _read(paths.search_record) or {}
        state = search.get("state", "created")
        counts, scored = _trial_counts(paths, live=state == "running")
        best = _read(paths.best_hyperparameters) or search.get("best") or {}
    except (OSError, ValueError, KeyError) as error:
        logger.warning("project %s has an unreadable record: %s", paths.name, error)
        return TuningRow(paths.name, "unreadable")

    settings = search.get("settings") or {}
    objective = best.get("objective") or settings.get("objective", "")
    if scored and not best:
        # Best so far of a running search; losses are minimised.
        pick = min if "loss" in objective else max
        score, values = pick(scored, key=lambda pair: pair[0])
        best = {"score": score, "hyperparameters": values}
    hyperparameters = {
        name: value
        for name, value in (best.get("hyperparameters") or {}).items()
        if not name.startswith("tuner/")
    }
    return TuningRow(
        name=paths.name,
        state=state,
        created_at=str(search.get("created_at", "")),
        tuner=str(settings.get("tuner", "")),
        objective=objective,
        done=counts.get("COMPLETED", 0),
        failed=sum(counts.get(status, 0) for status in _FAILED_TRIALS),
        max_trials=settings.get("max_trials"),
        best_score=best.get("score"),
        best_hyperparameters=hyperparameters,
    )


def _oldest_first(row: RunRow | TuningRow) -> tuple[bool, str, str]:
    # Rows without a creation time go last, in name order.
    return (not row.created_at, row.created_at, row.name)


def collect(root: Path) -> Report:
    """Read every run and tuning project under `root`.

    Raises:
        InputError: `root` does not exist or is not a folder.
    """
    if not root.is_dir():
        raise InputError(
            f"the root {str(root)!r} does not exist: pass --root (or "
            "KERASJOBS_ROOT) with the folder your runs are in"
        )
    layout = Layout(root)

    runs = [read_run(paths) for paths in layout.runs()]
    projects = [read_project(paths) for paths in layout.tuning_projects()]

    runs.sort(key=_oldest_first)
    projects.sort(key=_oldest_first)
    return Report(root, runs, projects)


# Formatting.


def build_report(root: Path, style: str = "table") -> str:
    """Collect the root's runs and tuning projects and format them.

    Raises:
        InputError: the root is missing, or `style` is not one of FORMATS.
    """
    from kerasjobs.report_format import format_markdown, format_table

    formatters: dict[str, Callable[[Report], str]] = {
        "table": format_table,
        "markdown": format_markdown,
    }
    if style not in formatters:
        raise InputError(f"format {style!r}: use one of {', '.join(FORMATS)}")
    return formatters[style](collect(root))

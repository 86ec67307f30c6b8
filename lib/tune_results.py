"""A search's record and results: search.json, trials.csv, the best trial."""

from __future__ import annotations

import json
import logging
import math
import os
from typing import Any

from kerasjobs.layout import TuningPaths
from kerasjobs.records import (
    git_commit,
    library_versions,
    read_json,
    utc_now,
    write_csv_atomic,
    write_json_atomic,
)

logger = logging.getLogger(__name__)

TRIAL_COLUMNS = [
    "trial_id",
    "status",
    "score",
    "best_step",
    "seconds",
    "runs",
    "hyperparameters",
]
# Hyperband's bookkeeping values, kept apart from the tuned hyperparameters.
_TUNER_PREFIX = "tuner/"


def record_search(
    paths: TuningPaths,
    state: str,
    settings: dict[str, Any],
    message: str | None = None,
    summary: dict[str, Any] | None = None,
) -> None:
    """Write search.json: the search's settings and state.

    Workers read its state when the chief does not answer: "finished" and
    "failed" mean the chief has ended the search and gone.
    """
    previous = read_json(paths.search_record) or {}
    record = {
        "project": paths.name,
        "state": state,
        "message": message,
        "settings": settings,
        "created_at": previous.get("created_at", utc_now()),
        "updated_at": utc_now(),
        "versions": library_versions(),
        "git_commit": git_commit(),
        **(summary or {}),
    }
    write_json_atomic(paths.search_record, record)


def recorded_state(paths: TuningPaths) -> tuple[str, str]:
    """The state and message search.json holds ("missing" if none)."""
    try:
        record = read_json(paths.search_record) or {}
    except (OSError, ValueError):
        return "missing", ""
    return record.get("state", "missing"), record.get("message") or ""


def _plain(value: Any) -> Any:
    """A JSON-friendly number: None for NaN or infinity."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def trial_rows(oracle: Any) -> list[dict[str, Any]]:
    """One row per trial, in trial order."""
    rows = []
    for trial_id in sorted(oracle.trials):
        trial = oracle.trials[trial_id]
        rows.append(
            {
                "trial_id": trial_id,
                "status": trial.status,
                "score": _plain(trial.score),
                "best_step": trial.best_step,
                "seconds": oracle.timing.get(trial_id, {}).get("seconds"),
                "runs": oracle._run_times.get(trial_id, 0),
                "hyperparameters": json.dumps(
                    trial.hyperparameters.values, sort_keys=True
                ),
            }
        )
    return rows


def best_trial(oracle: Any) -> Any | None:
    """The best completed trial, or None when no trial completed."""
    best = oracle.get_best_trials(1)
    if not best or best[0].status != "COMPLETED":
        return None
    return best[0]


def write_results(tuner: Any, oracle: Any, paths: TuningPaths) -> dict[str, Any]:
    """Write trials.csv, best_hyperparameters.json and best_model.keras.

    best_model.keras is the best trial's own model, built from its
    hyperparameters with the weights of its best epoch, not a retrained one.

    Returns:
        A summary for search.json: trial counts and the best trial.
    """
    # The chief still serves workers: read the oracle under its lock.
    rows = oracle.locked(trial_rows)
    write_csv_atomic(paths.trials_table, rows, TRIAL_COLUMNS)
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    summary: dict[str, Any] = {"trials": counts, "best": None}

    trial = oracle.locked(best_trial)
    if trial is None:
        logger.warning("no trial completed: no best hyperparameters or model")
        return summary
    values = trial.hyperparameters.values
    best = {
        "trial_id": trial.trial_id,
        "objective": oracle.objective.name,
        "direction": oracle.objective.direction,
        "score": _plain(trial.score),
        "best_step": trial.best_step,
        "hyperparameters": {
            k: v for k, v in values.items() if not k.startswith(_TUNER_PREFIX)
        },
        "tuner_values": {
            k: v for k, v in values.items() if k.startswith(_TUNER_PREFIX)
        },
    }
    write_json_atomic(paths.best_hyperparameters, best)
    save_best_model(tuner, trial, paths)
    summary["best"] = best
    return summary


def save_best_model(tuner: Any, trial: Any, paths: TuningPaths) -> None:
    """Save the trial's model, via a partial file renamed into place.

    Skipped when best_model.keras already holds this trial's model (the
    chief saves the best model during the search, see `save_best_so_far`).
    """
    marker = getattr(tuner, "saved_best_trial", None)
    if marker == trial.trial_id and paths.best_model.exists():
        return
    model = tuner.load_model(trial)
    paths.best_model_partial.unlink(missing_ok=True)
    model.save(paths.best_model_partial)
    os.replace(paths.best_model_partial, paths.best_model)
    tuner.saved_best_trial = trial.trial_id
    logger.info("best model (trial %s) saved to %s", trial.trial_id, paths.best_model)


def save_best_so_far(tuner: Any, oracle: Any, paths: TuningPaths) -> None:
    """Save the best completed trial's model if it changed since last time."""
    trial = oracle.locked(best_trial)
    if trial is not None:
        save_best_model(tuner, trial, paths)

"""A Keras Tuner oracle that ends every search: timeouts, failures, restarts.

Keras Tuner 1.4.8's Oracle, as the chief serves it to workers, has gaps that
make a distributed search hang or repeat work (see the README's Limitations
and /work/shared/UPSTREAM.md); `DependableOracle` is a mixin placed before a
stock oracle class (random, Bayesian, Hyperband) that closes them:

- a trial whose worker sends no news for `trial_timeout` seconds goes back to
  the queue for another worker (upstream waits for it forever);
- too many consecutive failures end the search as "failed" instead of raising
  inside the gRPC handler (upstream: the chief hangs, workers die);
- `search_state()` tells the chief the moment the last trial ends (upstream
  polls every 20 s and also waits for every worker ever seen);
- a reload keeps the trials workers are still running as running, and never
  queues a finished trial again (upstream re-runs them);
- state files are written atomically, and the lock is released when a call
  raises (upstream's `synchronized` leaks it, hanging the chief).
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from keras_tuner.src.engine import oracle as oracle_module
from keras_tuner.src.engine import trial as trial_module

from kerasjobs.records import write_json_atomic

logger = logging.getLogger(__name__)

Status = trial_module.TrialStatus
TERMINAL = (Status.COMPLETED, Status.FAILED)
# A trial whose workers vanish this many times is failed, not handed out again
# (a trial that kills its worker, say by running out of memory, would else
# loop forever).
MAX_LOST_PER_TRIAL = 3


def guarded(method: Callable) -> Callable:
    """Hold the oracle's lock for the call, and release it even when it raises.

    Upstream's `synchronized` acquires the same lock (`oracle.LOCKS`) but does
    not release it when the wrapped call raises, so one bad request hangs the
    chief. Inner `synchronized` calls see this thread owns it and pass.
    """

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        name = threading.current_thread().name
        if oracle_module.THREADS[self] == name:
            return method(self, *args, **kwargs)
        with oracle_module.LOCKS[self]:
            oracle_module.THREADS[self] = name
            try:
                return method(self, *args, **kwargs)
            finally:
                oracle_module.THREADS[self] = None

    return wrapper


class LoggingDisplay(oracle_module.Display):
    """One log line per trial start and end; no KeyError after a restart."""

    def on_trial_begin(self, trial) -> None:
        self.trial_start[trial.trial_id] = datetime.now()
        if self.search_start is None:
            self.search_start = self.trial_start[trial.trial_id]
        values = ", ".join(
            f"{name}={self.format_value(value)}"
            for name, value in trial.hyperparameters.values.items()
        )
        logger.info("trial %s started: %s", trial.trial_id, values or "defaults")

    def on_trial_end(self, trial) -> None:
        best = self.oracle.get_best_trials()
        best_score = best[0].score if best else None
        logger.info(
            "trial %s ended %s: %s=%s (best so far %s)",
            trial.trial_id,
            trial.status,
            self.oracle.objective.name,
            trial.score,
            best_score,
        )


class DependableOracle:
    """Mixin for a Keras Tuner oracle class; see the module docstring."""

    def __init__(self, *args: Any, trial_timeout: float = 120.0, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.trial_timeout = trial_timeout
        self.failure: str | None = None
        self.stopped = False
        self.timing: dict[str, dict[str, Any]] = {}
        self.errors: dict[str, str] = {}
        self.lost: dict[str, int] = {}
        self._last_news: dict[str, float] = {}
        self._restored_ongoing: dict[str, Any] = {}
        self._display = LoggingDisplay(oracle=self)

    # Requests from tuners.

    @guarded
    def create_trial(self, tuner_id: str):
        if self.failure:
            self.tuner_ids.discard(tuner_id)
            return trial_module.Trial(self.get_space(), status=Status.STOPPED)
        trial = super().create_trial(tuner_id)
        if trial.status == Status.RUNNING:
            self._last_news[trial.trial_id] = time.monotonic()
            self.timing.setdefault(trial.trial_id, {})["started"] = time.time()
        elif trial.status == Status.STOPPED:
            self.stopped = True
        return trial

    @guarded
    def update_trial(self, trial_id: str, metrics: dict, step: int = 0):
        self.record_news(trial_id)
        trial = self.trials[trial_id]
        if trial_id in self.end_order:
            return trial
        return super().update_trial(trial_id, metrics, step=step)

    @guarded
    def end_trial(self, trial) -> None:
        known = self.trials.get(trial.trial_id)
        if known is None or trial.trial_id in self.end_order:
            # A late report for a trial already ended (its worker was thought
            # lost and another worker finished it): count it only once.
            logger.info("ignoring a second end of trial %s", trial.trial_id)
            self._forget_ongoing(trial.trial_id)
            return
        if trial.trial_id in self._retry_queue:
            self._retry_queue.remove(trial.trial_id)
        started = self.timing.get(trial.trial_id, {}).get("started")
        if started is not None:
            self.timing[trial.trial_id]["seconds"] = round(time.time() - started, 3)
        self._last_news.pop(trial.trial_id, None)
        super().end_trial(trial)
        # Upstream saves before the trial leaves `ongoing_trials`, so a chief
        # killed now would run the finished trial again: save once more.
        self.save()

    @guarded
    def update_space(self, hyperparameters) -> None:
        super().update_space(hyperparameters)

    @guarded
    def record_news(self, trial_id: str) -> bool:
        """Note that a trial's worker is alive; False if the trial is not running."""
        if not any(t.trial_id == trial_id for t in self.ongoing_trials.values()):
            return False
        self._last_news[trial_id] = time.monotonic()
        return True

    @guarded
    def record_error(self, trial_id: str, message: str) -> None:
        """Keep a worker's error line for the failure message (the gRPC Trial
        message carries no error text)."""
        self.errors[trial_id] = message[-500:]

    @guarded
    def release(self, tuner_id: str, trial_id: str) -> None:
        """A worker stops mid-trial (SIGTERM): queue its trial for others now."""
        ongoing = self.ongoing_trials.get(tuner_id)
        if ongoing is None or ongoing.trial_id != trial_id:
            return
        self.ongoing_trials.pop(tuner_id)
        self._retry_queue.append(trial_id)
        self._last_news.pop(trial_id, None)
        logger.warning("worker %s gave trial %s back", tuner_id, trial_id)
        self.save()

    # The chief's loop.

    @guarded
    def requeue_lost_trials(self) -> None:
        """Hand out again each trial whose worker sent no news for too long."""
        now = time.monotonic()
        for tuner_id, trial in list(self.ongoing_trials.items()):
            silent = now - self._last_news.setdefault(trial.trial_id, now)
            if silent <= self.trial_timeout:
                continue
            self.ongoing_trials.pop(tuner_id)
            self.tuner_ids.discard(tuner_id)
            self._last_news.pop(trial.trial_id, None)
            self.lost[trial.trial_id] = self.lost.get(trial.trial_id, 0) + 1
            logger.warning(
                "no news from %s on trial %s for %.0f s: handing it to another worker",
                tuner_id,
                trial.trial_id,
                silent,
            )
            if self.lost[trial.trial_id] >= MAX_LOST_PER_TRIAL:
                self._fail_lost_trial(trial)
            else:
                self._retry_queue.append(trial.trial_id)
        self.save()

    def _fail_lost_trial(self, trial) -> None:
        trial.status = Status.FAILED
        trial.message = f"its worker was lost {MAX_LOST_PER_TRIAL} times"
        self.errors[trial.trial_id] = trial.message
        self._run_times[trial.trial_id] += 1
        self.end_order.append(trial.trial_id)
        self._check_consecutive_failures()
        self._save_trial(trial)

    @guarded
    def locked(self, function: Callable[[Any], Any]) -> Any:
        """`function(self)` under the oracle's lock, for a consistent read."""
        return function(self)

    @guarded
    def search_state(self) -> str:
        """ "failed", "finished" (nothing running or queued, no trial left) or
        "running"."""
        if self.failure:
            return "failed"
        if self.ongoing_trials or self._retry_queue:
            return "running"
        if self.stopped or (self.max_trials and len(self.trials) >= self.max_trials):
            return "finished"
        return "running"

    def _forget_ongoing(self, trial_id: str) -> None:
        for tuner_id, trial in list(self.ongoing_trials.items()):
            if trial.trial_id == trial_id:
                self.ongoing_trials.pop(tuner_id)

    # Failures and retries.

    def _check_consecutive_failures(self) -> None:
        # Upstream raises RuntimeError here, inside the chief's gRPC handler:
        # the reporting worker dies and the chief waits forever. Record it.
        consecutive = 0
        for trial_id in self.end_order:
            failed = self.trials[trial_id].status == Status.FAILED
            consecutive = consecutive + 1 if failed else 0
        if consecutive >= self.max_consecutive_failed_trials and not self.failure:
            last = self.end_order[-1]
            detail = self.errors.get(last) or self.trials[last].message or ""
            detail = detail.strip().splitlines()[-1] if detail.strip() else "no detail"
            self.failure = (
                f"{consecutive} trials failed in a row (limit "
                f"--max-consecutive-failed-trials {self.max_consecutive_failed_trials}"
                f"); the last, trial {last}, failed with: {detail}"
            )
            logger.error("search failed: %s", self.failure)

    def _retry(self, trial) -> bool:
        # Upstream prints its retry notice; log it instead.
        with contextlib.redirect_stdout(io.StringIO()):
            retried = super()._retry(trial)
        if retried:
            logger.warning(
                "trial %s failed (run %d of %d); it will be retried",
                trial.trial_id,
                self._run_times[trial.trial_id],
                self.max_retries_per_trial + 1,
            )
        return retried

    # State on disk.

    def get_state(self) -> dict[str, Any]:
        state = super().get_state()
        state["kerasjobs"] = {
            "timing": self.timing,
            "errors": self.errors,
            "lost": self.lost,
            "stopped": self.stopped,
        }
        return state

    def set_state(self, state: dict[str, Any]) -> None:
        super().set_state(state)
        ours = state.get("kerasjobs", {})
        self.timing = ours.get("timing", {})
        self.errors = ours.get("errors", {})
        self.lost = ours.get("lost", {})
        self.stopped = ours.get("stopped", False)
        self._restored_ongoing = dict(self.ongoing_trials)

    def reload(self) -> None:
        super().reload()
        # Upstream queues every trial that was running for a retry, although
        # its worker may still be running it (a chief restart) and although
        # it may have finished just before the kill. Keep running trials with
        # their workers (the trial timeout catches dead ones), drop ended ones.
        now = time.monotonic()
        for tuner_id, trial in self._restored_ongoing.items():
            trial = self.trials[trial.trial_id]
            if trial.status in TERMINAL:
                continue
            self.ongoing_trials[tuner_id] = trial
            self.tuner_ids.add(tuner_id)
            self._last_news[trial.trial_id] = now
        running = {t.trial_id for t in self.ongoing_trials.values()}
        self._retry_queue = [
            trial_id
            for trial_id in self._retry_queue
            if trial_id not in running and self.trials[trial_id].status not in TERMINAL
        ]
        logger.info(
            "resumed: %d trials, %d running, %d queued",
            len(self.trials),
            len(running),
            len(self._retry_queue),
        )

    def save(self) -> None:
        write_json_atomic(Path(self._get_oracle_fname()), self.get_state())

    def _save_trial(self, trial) -> None:
        path = Path(self._get_trial_dir(trial.trial_id)) / "trial.json"
        write_json_atomic(path, trial.get_state())

"""The Keras side of a search: Keras Tuner's tuners with heartbeats and guards."""

from __future__ import annotations

import logging
import math
import re
import shutil
from collections.abc import Callable
from typing import Any

import keras
import keras_tuner
from keras_tuner.engine.trial import TrialStatus
from keras_tuner.src import config as keras_tuner_config

from kerasjobs.layout import TuningPaths
from kerasjobs.oracle_client import Heartbeat, RetryingOracleClient
from kerasjobs.tune_runtime import check_terminated

logger = logging.getLogger(__name__)

# Keras Tuner prints every failed trial's traceback to stderr while DEBUG is
# on (the default); the traceback is logged at debug level here instead.
keras_tuner_config.DEBUG = False


_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit)\b.*:", re.M)
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def error_summary(traceback_text: str, limit: int = 300) -> str:
    """The exception's type and message from a traceback, on one line."""
    matches = list(_EXCEPTION_LINE.finditer(traceback_text))
    if not matches:
        return "no error message"
    text = _ANSI.sub("", traceback_text[matches[-1].start() :])
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite; the trial is failed."""


class FailOnNonFiniteLoss(keras.callbacks.Callback):
    """Fails the trial when the loss is NaN or infinite.

    Keras' TerminateOnNaN only stops training, so the trial would be scored
    as if it had finished; raising makes Keras Tuner record it as failed and
    retry it (up to --max-retries-per-trial).
    """

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            raise NonFiniteLossError(f"the loss became {loss} at epoch {epoch + 1}")


class StopOnSigterm(keras.callbacks.Callback):
    """Ends training at the next batch once SIGTERM has arrived."""

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        check_terminated()

    def on_test_batch_end(self, batch: int, logs: dict | None = None) -> None:
        check_terminated()


class DependableTunerMixin:
    """Per-trial log folders, heartbeats and error reports for a Keras Tuner tuner.

    Put it before a Keras Tuner tuner class. On a worker, `connect` turns
    the local oracle into a RetryingOracleClient, replacing the plain
    OracleClient that Keras Tuner's BaseTuner wraps it in.
    """

    def __init__(
        self,
        oracle: Any,
        hypermodel: Callable,
        paths: TuningPaths,
        executions_per_trial: int,
        connect: Callable[[Any], RetryingOracleClient] | None = None,
        heartbeat_period: float = 10.0,
        strategy: Any = None,
    ) -> None:
        self.paths = paths
        self.heartbeat: Heartbeat | None = None
        self.trials_run = 0
        # Keras Tuner's Tuner, not the subclass: Hyperband's constructor would
        # build its own (upstream) oracle in place of ours.
        keras_tuner.Tuner.__init__(
            self,
            oracle=oracle,
            hypermodel=hypermodel,
            directory=str(paths.tuner_directory),
            project_name=paths.name,
            overwrite=False,
            executions_per_trial=executions_per_trial,
            distribution_strategy=strategy,
        )
        if connect is not None:
            self.oracle = connect(self.oracle._oracle)
            self.heartbeat = Heartbeat(self.oracle, heartbeat_period)

    @property
    def is_worker(self) -> bool:
        return self.heartbeat is not None

    def pre_create_trial(self) -> None:
        check_terminated()
        super().pre_create_trial()

    def on_trial_begin(self, trial: Any) -> None:
        # A trial run again starts from scratch: so do its TensorBoard logs.
        shutil.rmtree(self.paths.trial_logs(trial.trial_id), ignore_errors=True)
        if self.heartbeat is not None:
            self.heartbeat.start(trial.trial_id)
            values = ", ".join(
                f"{name}={value}"
                for name, value in trial.hyperparameters.values.items()
            )
            logger.info("trial %s started here: %s", trial.trial_id, values)
        super().on_trial_begin(trial)

    def on_epoch_end(self, trial: Any, model: Any, epoch: int, logs=None) -> None:
        if self.heartbeat is not None:
            self.heartbeat.beat()
        super().on_epoch_end(trial, model, epoch, logs=logs)

    def on_trial_end(self, trial: Any) -> None:
        if self.heartbeat is not None:
            self.heartbeat.stop()
        self.trials_run += 1
        if trial.status != TrialStatus.COMPLETED:
            self.report_error(trial)
        super().on_trial_end(trial)

    def report_error(self, trial: Any) -> None:
        """Log the trial's error and pass its last line to the oracle."""
        line = error_summary(trial.message or "")
        logger.warning("trial %s failed: %s", trial.trial_id, line)
        logger.debug("trial %s traceback:\n%s", trial.trial_id, trial.message)
        if self.is_worker:
            self.oracle.control.try_call(
                "Report", {"trial_id": trial.trial_id, "message": line}, timeout=5
            )
        else:
            self.oracle.record_error(trial.trial_id, line)

    @property
    def current_trial_id(self) -> str | None:
        return self.heartbeat.trial_id if self.heartbeat is not None else None


class DependableTuner(DependableTunerMixin, keras_tuner.Tuner):
    """Random search and Bayesian optimisation (the oracle decides which)."""


class DependableHyperband(DependableTunerMixin, keras_tuner.Hyperband):
    """Hyperband: its run_trial and model building, with our oracle."""


def build_tuner(
    kind: str,
    oracle: Any,
    hypermodel: Callable,
    paths: TuningPaths,
    executions_per_trial: int,
    connect: Callable[[Any], RetryingOracleClient] | None = None,
    heartbeat_period: float = 10.0,
    strategy: Any = None,
):
    """The tuner for --tuner, loading the project's state if it exists."""
    tuner_class = DependableHyperband if kind == "hyperband" else DependableTuner
    return tuner_class(
        oracle=oracle,
        hypermodel=hypermodel,
        paths=paths,
        executions_per_trial=executions_per_trial,
        connect=connect,
        heartbeat_period=heartbeat_period,
        strategy=strategy,
    )


def search_callbacks(paths: TuningPaths) -> list[keras.callbacks.Callback]:
    """Callbacks for every trial; Keras Tuner gives the TensorBoard callback a
    folder per trial and execution, and adds the HParams callback."""
    return [
        keras.callbacks.TensorBoard(log_dir=str(paths.logs), write_graph=False),
        FailOnNonFiniteLoss(),
        StopOnSigterm(),
    ]

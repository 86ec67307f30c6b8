"""The tune job: a Keras Tuner search, alone or as the chief or a worker."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from kerasjobs.data import Dataset, load_dataset
from kerasjobs.errors import InputError, RunError
from kerasjobs.layout import Layout, TuningPaths
from kerasjobs.space import (
    HyperParameterSpec,
    check_space_for_model,
    load_space_file,
)
from kerasjobs.tune_config import Role, TuneConfig, check_config, resolve_role
from kerasjobs.tune_models import load_hypermodel_function
from kerasjobs.tune_results import (
    record_search,
    recorded_state,
    save_best_so_far,
    write_results,
)
from kerasjobs.tune_runtime import (
    SearchInterruptedError,
    Terminated,
    select_gpus,
    set_keras_tuner_environment,
    terminate_on_sigterm,
    trial_strategy,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TuneResult:
    """What one process of a search reports at its end."""

    paths: TuningPaths
    role: Role
    state: str
    trials_run: int = 0
    summary: dict[str, Any] = field(default_factory=dict)


@dataclass
class Search:
    """What every role needs: the options, where, the data, oracle, hypermodel."""

    config: TuneConfig
    role: Role
    paths: TuningPaths
    dataset: Dataset
    oracle: Any = None
    hypermodel: Any = None
    # The tf.distribute strategy each trial trains under (None: the default).
    strategy: Any = None

    @property
    def settings(self) -> dict[str, Any]:
        settings = self.config.search_settings()
        settings["max_trials"] = self.config.max_trials
        settings["max_retries_per_trial"] = self.config.max_retries_per_trial
        settings["max_consecutive_failed_trials"] = (
            self.config.max_consecutive_failed_trials
        )
        return settings


def run_tuning(config: TuneConfig) -> TuneResult:
    """Run this process's part of the search: standalone, chief or worker.

    Raises:
        InputError: bad options, space file, hypermodel or data.
        RunError: the search failed, or the chief could not be reached.
        SearchInterruptedError: SIGTERM arrived; rerunning the command resumes.
    """
    # Check everything the user gave before anything starts.
    check_config(config)
    role = resolve_role(config)
    specs = load_space_file(config.space) if config.space else None
    check_space_for_model(specs or [], config.hypermodel)
    if config.hypermodel:
        load_hypermodel_function(config.hypermodel)
    layout = Layout(config.root)
    layout.ensure_writable()
    paths = layout.tuning_paths(config.project_name)
    dataset = load_dataset(
        config.dataset, layout.datasets, config.validation_split, config.seed
    )

    # GPUs and Keras Tuner's variables must be set before TensorFlow starts.
    select_gpus(config.gpu, role)
    set_keras_tuner_environment(role)
    paths.directory.mkdir(parents=True, exist_ok=True)
    search = Search(config, role, paths, dataset)
    logger.info("tuning project %s as %s %s", paths.name, role.kind, role.tuner_id)

    try:
        with terminate_on_sigterm():
            prepare(search, specs)
            if role.kind == "worker":
                return run_worker(search)
            if role.kind == "chief":
                return run_chief(search)
            return run_standalone(search)
    except Terminated:
        raise SearchInterruptedError(
            f"{role.kind} {role.tuner_id} stopped by SIGTERM; its state is saved: "
            "rerun the same command to resume"
        ) from None


def prepare(search: Search, specs: list[HyperParameterSpec] | None) -> None:
    """Build the oracle and the hypermodel (this imports TensorFlow)."""
    from kerasjobs.devices import split_cpu
    from kerasjobs.oracle_factory import make_oracle
    from kerasjobs.space import to_hyperparameters
    from kerasjobs.tune_models import make_hypermodel

    config = search.config
    # Before anything starts TensorFlow's runtime.
    split_cpu(config.cpu_replicas)
    search.oracle = make_oracle(
        config.tuner,
        objective=config.objective,
        max_trials=config.max_trials,
        epochs=config.epochs,
        seed=config.seed,
        max_retries_per_trial=config.max_retries_per_trial,
        max_consecutive_failed_trials=config.max_consecutive_failed_trials,
        trial_timeout=config.trial_timeout,
        hyperparameters=to_hyperparameters(specs) if specs else None,
    )
    search.hypermodel = make_hypermodel(
        config.hypermodel, search.dataset.input_shape, search.dataset.num_classes
    )
    if search.role.kind != "chief":
        search.strategy = trial_strategy(config)


def fit_trials(tuner: Any, search: Search) -> None:
    """Keras Tuner's search loop over this process's trials."""
    from kerasjobs.data import make_tf_dataset
    from kerasjobs.train import progress_verbosity
    from kerasjobs.tune_tuner import search_callbacks

    config, dataset = search.config, search.dataset
    # Under a strategy, --batch-size is per replica.
    replicas = search.strategy.num_replicas_in_sync if search.strategy else 1
    batch_size = config.batch_size * replicas
    tuner.search(
        make_tf_dataset(dataset.x_train, dataset.y_train, batch_size, config.seed),
        validation_data=make_tf_dataset(dataset.x_val, dataset.y_val, batch_size),
        epochs=config.epochs,
        callbacks=search_callbacks(search.paths),
        # The tf.data pipeline shuffles already.
        shuffle=False,
        verbose=progress_verbosity(config.verbose),
    )


def run_standalone(search: Search) -> TuneResult:
    """Every trial in this process, then the results."""
    from kerasjobs.tune_tuner import build_tuner

    config, paths, oracle = search.config, search.paths, search.oracle
    tuner = build_tuner(
        config.tuner,
        oracle,
        search.hypermodel,
        paths,
        config.executions_per_trial,
        strategy=search.strategy,
    )
    tuner.save()
    record_search(paths, "running", search.settings)
    try:
        fit_trials(tuner, search)
    except Terminated:
        record_search(paths, "stopped", search.settings, "stopped by SIGTERM")
        raise

    state = oracle.search_state()
    summary = write_results(tuner, oracle, paths)
    record_search(paths, state, search.settings, oracle.failure, summary)
    if state == "failed":
        raise RunError(f"the search failed: {oracle.failure}")
    return TuneResult(paths, search.role, state, tuner.trials_run, summary)


def run_chief(search: Search) -> TuneResult:
    """Serve the oracle to the workers; write the results when the search ends."""
    from kerasjobs.oracle_server import serve_search
    from kerasjobs.tune_tuner import build_tuner

    config, paths, oracle = search.config, search.paths, search.oracle
    # The chief trains nothing, but builds the hypermodel once to learn the
    # space, and loads the best trial's model at the end.
    tuner = build_tuner(
        config.tuner, oracle, search.hypermodel, paths, config.executions_per_trial
    )
    tuner.save()
    record_search(paths, "running", search.settings)
    summary: dict[str, Any] = {}

    def finish(state: str) -> None:
        summary.update(write_results(tuner, oracle, paths))
        record_search(paths, state, search.settings, oracle.failure, summary)

    identity = {"project": paths.name, "search_id": config.search_id()}
    try:
        state = serve_search(
            oracle,
            search.role.port,
            identity,
            config.connect_timeout,
            finish,
            progress=lambda: save_best_so_far(tuner, oracle, paths),
        )
    except (Terminated, RunError) as error:
        message = "stopped by SIGTERM" if isinstance(error, Terminated) else str(error)
        record_search(paths, "stopped", search.settings, message)
        raise
    if state == "failed":
        raise RunError(f"the search failed: {oracle.failure}")
    return TuneResult(paths, search.role, state, 0, summary)


def run_worker(search: Search) -> TuneResult:
    """Ask the chief for trials and run them until none is left."""
    from kerasjobs.oracle_client import RetryingOracleClient, SearchEnded
    from kerasjobs.tune_tuner import build_tuner

    config, paths, role = search.config, search.paths, search.role

    def connect(local_oracle: Any) -> RetryingOracleClient:
        return RetryingOracleClient(
            local_oracle,
            role.address,
            config.connect_timeout,
            lambda: recorded_state(paths),
        )

    tuner = build_tuner(
        config.tuner,
        search.oracle,
        search.hypermodel,
        paths,
        config.executions_per_trial,
        connect=connect,
        heartbeat_period=max(0.25, min(10.0, config.trial_timeout / 4)),
        strategy=search.strategy,
    )
    try:
        check_same_search(tuner.oracle, search)
        fit_trials(tuner, search)
        state, message = "finished", ""
    except SearchEnded as ended:
        state, message = ended.state, ended.message
    except Terminated:
        release_trial(tuner)
        raise
    finally:
        tuner.oracle.close()

    logger.info("worker %s ran %d trials", role.tuner_id, tuner.trials_run)
    if state == "failed":
        raise RunError(f"the search failed: {message}")
    if state != "finished":
        raise RunError(message or f"the search ended in state {state!r}")
    return TuneResult(paths, role, state, tuner.trials_run)


def check_same_search(client: Any, search: Search) -> None:
    """Ask the chief (waiting for it) and stop if it runs another search."""
    from kerasjobs.oracle_client import SearchEnded

    status = client.status()
    if status.get("search_id") != search.config.search_id():
        raise InputError(
            f"the chief at {search.role.address} runs project "
            f"{status.get('project')!r} with other search settings than this "
            f"worker's ({search.paths.name!r}): give the chief and every worker "
            "the same options"
        )
    if status["state"] in ("finished", "failed"):
        raise SearchEnded(status["state"], status.get("message") or "")


def release_trial(tuner: Any) -> None:
    """On SIGTERM, hand the running trial back so another worker takes it now."""
    trial_id = tuner.current_trial_id
    if trial_id is None:
        return
    released = tuner.oracle.control.try_call(
        "Release", {"tuner_id": tuner.oracle.tuner_id, "trial_id": trial_id}, timeout=2
    )
    logger.warning(
        "stopping on SIGTERM; trial %s %s",
        trial_id,
        "handed back" if released else "will be retaken after --trial-timeout",
    )


def describe(result: TuneResult) -> str:
    """The one-line summary printed at the end."""
    if result.role.kind == "worker":
        return (
            f"worker {result.role.tuner_id}: ran {result.trials_run} trials; "
            f"search {result.state}"
        )
    best = result.summary.get("best")
    if not best:
        return f"search {result.state}: no trial completed ({result.paths.directory})"
    values = ", ".join(f"{k}={v}" for k, v in sorted(best["hyperparameters"].items()))
    return (
        f"search {result.state}: best {best['objective']} {best['score']:.4f} "
        f"(trial {best['trial_id']}): {values}; results in {result.paths.directory}"
    )

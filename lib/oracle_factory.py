"""The dependable oracle for each --tuner: random, Bayesian, Hyperband."""

from __future__ import annotations

from keras_tuner.oracles import (
    BayesianOptimizationOracle,
    HyperbandOracle,
    RandomSearchOracle,
)

from kerasjobs.oracle import DependableOracle


class DependableRandomSearchOracle(DependableOracle, RandomSearchOracle):
    """Random search with the dependable behaviour."""


class DependableBayesianOracle(DependableOracle, BayesianOptimizationOracle):
    """Bayesian optimisation with the dependable behaviour."""


class DependableHyperbandOracle(DependableOracle, HyperbandOracle):
    """Hyperband with the dependable behaviour, capped at `max_trials` trials."""


def make_oracle(
    tuner: str,
    objective: str,
    max_trials: int,
    epochs: int,
    seed: int,
    max_retries_per_trial: int,
    max_consecutive_failed_trials: int,
    trial_timeout: float,
    hyperparameters=None,
):
    """The dependable oracle for --tuner, with a space file's entries if any."""
    common = {
        "objective": objective,
        # Keras Tuner takes a seed of 0 as "pick one at random".
        "seed": seed + 1,
        "hyperparameters": hyperparameters,
        # With a space file, hyperparameters it does not list keep the
        # builder's defaults instead of being tuned.
        "tune_new_entries": hyperparameters is None,
        "max_retries_per_trial": max_retries_per_trial,
        "max_consecutive_failed_trials": max_consecutive_failed_trials,
        "trial_timeout": trial_timeout,
    }
    if tuner == "hyperband":
        oracle = DependableHyperbandOracle(max_epochs=epochs, factor=3, **common)
        # Hyperband has no trial budget of its own; --max-trials caps it.
        oracle.max_trials = max_trials
        return oracle
    if tuner == "bayesian":
        return DependableBayesianOracle(max_trials=max_trials, **common)
    return DependableRandomSearchOracle(max_trials=max_trials, **common)

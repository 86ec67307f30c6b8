"""`kerasjobs tune`: options in, a frozen TuneConfig to the library."""

from __future__ import annotations

from pathlib import Path

import click

from kerasjobs.jobs.errors import translated_errors
from kerasjobs.jobs.options import data_options, root_option
from kerasjobs.tune_config import GPU_SETTINGS, OBJECTIVES, ROLES, TUNERS, TuneConfig

positive = click.IntRange(min=1)
seconds = click.FloatRange(min=0, min_open=True)


@click.command(name="tune")
@root_option
@data_options
@click.option(
    "--project",
    help="Folder name under <root>/tuning; rerunning with it resumes the search "
    "[default: <dataset>-<tuner>-<hash of the search options>].",
)
@click.option("--tuner", type=click.Choice(TUNERS), default="random", help="Search.")
@click.option(
    "--max-trials",
    type=positive,
    default=10,
    help="Trials to run (Hyperband: at most). A larger value resumes and extends.",
)
@click.option(
    "--executions-per-trial",
    type=positive,
    default=1,
    help="Models trained per trial; the score is their mean.",
)
@click.option(
    "--objective",
    type=click.Choice(OBJECTIVES),
    default="val_accuracy",
    help="Metric to optimise (its best epoch counts).",
)
@click.option(
    "--epochs",
    type=positive,
    default=10,
    help="Epochs per trial (Hyperband: the most epochs of any model).",
)
@click.option("--batch-size", type=positive, default=64, help="Samples per step.")
@click.option(
    "--space",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="YAML or JSON file of hyperparameters (int, float, choice, boolean) "
    "[default: units, depth, dropout and learning rate of the built-in MLP].",
)
@click.option(
    "--hypermodel",
    metavar="MODULE:FUNCTION",
    default=None,
    help="Your function(hp) or function(hp, input_shape, num_classes) returning "
    "a keras.Model, compiled or not (uncompiled: Adam with a tuned learning "
    "rate, sparse categorical cross-entropy, accuracy) [default: built-in MLP].",
)
@click.option(
    "--max-retries-per-trial",
    type=click.IntRange(min=0),
    default=1,
    help="Reruns of a trial that raised or whose loss became NaN.",
)
@click.option(
    "--max-consecutive-failed-trials",
    type=positive,
    default=3,
    help="Failed trials in a row that end the search with an error.",
)
@click.option(
    "--role",
    type=click.Choice(ROLES),
    default=None,
    help="This process's part [default: from KERASTUNER_TUNER_ID and "
    "KERASTUNER_ORACLE_IP, else standalone].",
)
@click.option(
    "--worker-id",
    default=None,
    help="A worker's id; a restarted worker with the same id takes its trial back "
    "[default: KERASTUNER_TUNER_ID, else worker-<JOB_COMPLETION_INDEX>, else "
    "worker-<hostname>].",
)
@click.option(
    "--oracle",
    metavar="HOST:PORT",
    default=None,
    help="The chief's address; the chief binds 0.0.0.0:PORT [default: "
    "KERASTUNER_ORACLE_IP:KERASTUNER_ORACLE_PORT].",
)
@click.option(
    "--trial-timeout",
    type=seconds,
    default=120.0,
    help="Seconds without news from a worker before its trial goes to another.",
)
@click.option(
    "--connect-timeout",
    type=seconds,
    default=300.0,
    help="Seconds a worker waits for an unreachable chief, and the chief for "
    "silent workers, before exiting with an error.",
)
@click.option(
    "--gpu",
    type=click.Choice(GPU_SETTINGS),
    default="auto",
    help="auto: the chief uses no GPU, and worker N uses only GPU N mod count "
    "when several are visible; all: every visible GPU; none: CPU only.",
)
@click.option(
    "--strategy",
    type=click.Choice(["auto", "default", "mirrored"]),
    default="default",
    help="How each trial trains on a worker holding several GPUs (--gpu all): "
    "mirrored over them; auto: mirrored when more than one GPU is visible.",
)
@click.option(
    "--cpu-replicas",
    type=click.IntRange(min=1),
    default=1,
    help="Split the CPU into this many logical devices (try --strategy "
    "mirrored on a laptop).",
)
@click.option(
    "--progress",
    type=click.Choice(["auto", "bar", "line"]),
    default="auto",
    help="Per-epoch display: a bar on a terminal, else one line per epoch.",
)
def command(
    root: Path,
    dataset: str,
    validation_split: float,
    seed: int,
    project: str | None,
    tuner: str,
    max_trials: int,
    executions_per_trial: int,
    objective: str,
    epochs: int,
    batch_size: int,
    space: Path | None,
    hypermodel: str | None,
    max_retries_per_trial: int,
    max_consecutive_failed_trials: int,
    role: str | None,
    worker_id: str | None,
    oracle: str | None,
    trial_timeout: float,
    connect_timeout: float,
    gpu: str,
    strategy: str,
    cpu_replicas: int,
    progress: str,
) -> None:
    """Search hyperparameters; rerunning the same command resumes the search.

    Alone by default. For a distributed search run one chief (--role chief)
    and any number of workers (--role worker) with the same options and
    --oracle pointing at the chief; they may start in any order.
    """
    config = TuneConfig(
        root=root,
        dataset=dataset,
        validation_split=validation_split,
        seed=seed,
        project=project,
        tuner=tuner,
        max_trials=max_trials,
        executions_per_trial=executions_per_trial,
        objective=objective,
        epochs=epochs,
        batch_size=batch_size,
        space=space,
        hypermodel=hypermodel,
        max_retries_per_trial=max_retries_per_trial,
        max_consecutive_failed_trials=max_consecutive_failed_trials,
        role=role,
        worker_id=worker_id,
        oracle=oracle,
        trial_timeout=trial_timeout,
        connect_timeout=connect_timeout,
        gpu=gpu,
        strategy=strategy,
        cpu_replicas=cpu_replicas,
        verbose=progress,
    )
    with translated_errors():
        from kerasjobs.tune import describe, run_tuning

        result = run_tuning(config)
    click.echo(describe(result))

"""`kerasjobs train`: options in, a frozen TrainConfig to the library."""

from __future__ import annotations

from pathlib import Path

import click

from kerasjobs.config import SCHEDULES, STRATEGIES, ScheduleConfig, TrainConfig
from kerasjobs.jobs.errors import translated_errors
from kerasjobs.jobs.options import data_options, model_option, root_option

positive = click.IntRange(min=1)
# The library's defaults are the CLI's defaults.
DEFAULTS = TrainConfig()
SCHEDULE = DEFAULTS.schedule


@click.command(name="train")
@root_option
@data_options
@model_option
@click.option(
    "--run-name",
    help="Folder name under the root "
    "[default: <dataset>-<model>-<hash of the options>].",
)
@click.option(
    "--epochs", type=positive, default=DEFAULTS.epochs, help="Most epochs to train."
)
@click.option(
    "--batch-size",
    type=positive,
    default=DEFAULTS.batch_size,
    help="Samples per step on each replica (global batch: this times replicas).",
)
@click.option(
    "--learning-rate",
    type=click.FloatRange(min=0, min_open=True),
    default=SCHEDULE.learning_rate,
    help="Base learning rate (Adam).",
)
@click.option(
    "--lr-schedule",
    type=click.Choice(SCHEDULES),
    default=SCHEDULE.name,
    help="How the learning rate changes per epoch.",
)
@click.option(
    "--warmup-epochs",
    type=click.IntRange(min=0),
    default=0,
    help="Epochs of linear warm-up before the schedule.",
)
@click.option(
    "--lr-decay-rate",
    type=click.FloatRange(0, 1, min_open=True),
    default=None,
    help="Decay factor [default: 0.5 per step, 0.9 per epoch for exponential].",
)
@click.option(
    "--lr-step-epochs",
    type=positive,
    default=SCHEDULE.step_epochs,
    help="Epochs between decays of the step schedule.",
)
@click.option(
    "--monitor",
    type=click.Choice(["val_accuracy", "val_loss", "accuracy", "loss"]),
    default="val_accuracy",
    help="Metric that picks the best checkpoint and stops early.",
)
@click.option(
    "--patience",
    type=click.IntRange(min=0),
    default=DEFAULTS.patience,
    help="Epochs without improvement before early stopping.",
)
@click.option(
    "--steps-per-execution",
    type=positive,
    default=DEFAULTS.steps_per_execution,
    help="Training steps run per call into TensorFlow.",
)
@click.option(
    "--jit-compile",
    type=click.Choice(["auto", "on", "off"]),
    default="auto",
    help="XLA compilation of the train step.",
)
@click.option(
    "--mixed-precision",
    type=click.Choice(["auto", "on", "off"]),
    default="auto",
    help="16-bit compute with float32 weights; auto: on for GPUs of compute "
    "capability 7.0 or more.",
)
@click.option(
    "--strategy",
    type=click.Choice(STRATEGIES),
    default="auto",
    help="Distribution: auto picks mirrored when more than one GPU is visible.",
)
@click.option(
    "--cpu-replicas",
    type=positive,
    default=1,
    help="Split the CPU into this many logical devices (try mirrored training "
    "on a laptop).",
)
@click.option(
    "--histogram-freq",
    type=click.IntRange(min=0),
    default=1,
    help="Epochs between weight histograms (0: none).",
)
@click.option(
    "--progress",
    type=click.Choice(["auto", "bar", "line"]),
    default="auto",
    help="A progress bar, or one line per epoch; auto picks the bar on a terminal.",
)
@click.option(
    "--overwrite",
    is_flag=True,
    help="Delete a run of the same name and train it from scratch.",
)
def command(
    root: Path,
    dataset: str,
    validation_split: float,
    seed: int,
    model: str,
    run_name: str | None,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    lr_schedule: str,
    warmup_epochs: int,
    lr_decay_rate: float | None,
    lr_step_epochs: int,
    monitor: str,
    patience: int,
    steps_per_execution: int,
    jit_compile: str,
    mixed_precision: str,
    strategy: str,
    cpu_replicas: int,
    histogram_freq: int,
    progress: str,
    overwrite: bool,
) -> None:
    """Train a model; rerunning the same command resumes a killed run."""
    config = TrainConfig(
        root=root,
        dataset=dataset,
        model=model,
        run_name=run_name,
        epochs=epochs,
        batch_size=batch_size,
        validation_split=validation_split,
        seed=seed,
        monitor=monitor,
        patience=patience,
        schedule=ScheduleConfig(
            name=lr_schedule,
            learning_rate=learning_rate,
            warmup_epochs=warmup_epochs,
            decay_rate=lr_decay_rate,
            step_epochs=lr_step_epochs,
        ),
        steps_per_execution=steps_per_execution,
        jit_compile=jit_compile,
        mixed_precision=mixed_precision,
        strategy=strategy,
        cpu_replicas=cpu_replicas,
        histogram_freq=histogram_freq,
        overwrite=overwrite,
        verbose=progress,
    )
    with translated_errors():
        from kerasjobs.train import describe, run_training

        result = run_training(config)
    click.echo(describe(result))

"""The `kerasjobs` command group; each job is loaded only when it is run."""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import sys

import click

# Each job lives in its own module and is imported on demand, so that
# `kerasjobs --help` never pays for importing TensorFlow.
JOBS = {
    "train": (
        "kerasjobs.jobs.train",
        "Fit a Keras model with checkpoints, early stopping, TensorBoard and a "
        "learning-rate schedule.",
    ),
    "embed": (
        "kerasjobs.jobs.embed",
        "Export a trained run's embeddings to TensorBoard's Embedding Projector.",
    ),
    "tune": (
        "kerasjobs.jobs.tune",
        "Search hyperparameters with Keras Tuner, alone or as chief and workers.",
    ),
    "fetch": (
        "kerasjobs.jobs.fetch",
        "Download a dataset into the shared root's cache (data staging).",
    ),
    "tensorboard": (
        "kerasjobs.jobs.tensorboard",
        "Serve TensorBoard for the shared root on this machine.",
    ),
    "report": (
        "kerasjobs.jobs.report",
        "Show the shared root's runs and tuning projects as a table.",
    ),
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported the first time they are used."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        # Only jobs whose module is present (a job is added with its module).
        return [name for name in JOBS if importlib.util.find_spec(JOBS[name][0])]

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in self.list_commands(ctx):
            return None
        module = importlib.import_module(JOBS[name][0])
        return module.command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter):
        # Listing the jobs uses the short help kept here, not the modules.
        rows = [(name, JOBS[name][1]) for name in self.list_commands(ctx)]
        with formatter.section("Jobs"):
            formatter.write_dl(rows)


def configure_logging(level: str) -> None:
    """Log to stderr with time and level; quieten TensorFlow's C++ logs."""
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%Y-%m-%dT%H:%M:%S",
        stream=sys.stderr,
    )
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    logging.getLogger("absl").setLevel(logging.ERROR)


@click.group(
    cls=LazyGroup,
    context_settings={"auto_envvar_prefix": "KERASJOBS", "show_default": True},
)
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="info",
    help="How much kerasjobs logs to stderr.",
)
@click.version_option(package_name="kerasjobs")
def cli(log_level: str) -> None:
    """Keras training, embedding and tuning as batch jobs.

    Every option can also come from the environment: KERASJOBS_<JOB>_<OPTION>,
    for example KERASJOBS_TRAIN_EPOCHS=5; the shared root is KERASJOBS_ROOT.
    """
    configure_logging(log_level)


def main() -> None:
    """Console entry point: one line on stderr for any error the user caused."""
    try:
        code = cli.main(standalone_mode=False, prog_name="kerasjobs")
    except click.ClickException as error:
        click.echo(f"kerasjobs: error: {error.format_message()}", err=True)
        sys.exit(error.exit_code)
    except click.Abort:
        click.echo("kerasjobs: aborted", err=True)
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)

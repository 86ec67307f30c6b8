"""`kerasjobs report`: the shared root's runs and tuning projects at a glance."""

from __future__ import annotations

from pathlib import Path

import click

from kerasjobs.jobs.errors import translated_errors
from kerasjobs.jobs.options import root_option
from kerasjobs.report import FORMATS, build_report


@click.command(name="report")
@root_option
@click.option(
    "--format",
    "style",
    type=click.Choice(FORMATS),
    default="table",
    help="table: for an 80-column terminal, long values cut; markdown: for a "
    "README or a pull request, values in full.",
)
def command(root: Path, style: str) -> None:
    """Print a table of the root's runs and tuning projects, oldest first.

    It reads only the records the jobs write (config.json, metrics.json,
    history.csv, search.json, trials.csv), so it is quick and safe while
    jobs run; their status shows running, failed or preempted.
    """
    with translated_errors():
        text = build_report(root, style)
    click.echo(text)

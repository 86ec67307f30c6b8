"""`kerasjobs fetch`: stage a download into the shared root's dataset cache."""

from __future__ import annotations

from pathlib import Path

import click

from kerasjobs.jobs.errors import translated_errors
from kerasjobs.jobs.options import root_option
from kerasjobs.layout import Layout

# The same names as kerasjobs.sources.DOWNLOADABLE_DATASETS, kept literal here
# so that `kerasjobs fetch --help` does not import numpy.
DATASETS = ("mnist", "fashion_mnist")


@click.command(name="fetch")
@root_option
@click.option(
    "--dataset",
    type=click.Choice(DATASETS),
    default="mnist",
    help="The dataset to download into <root>/datasets.",
)
def command(root: Path, dataset: str) -> None:
    """Download a dataset once, so that training pods need no network."""
    layout = Layout(root)
    with translated_errors():
        from kerasjobs.sources import fetch_dataset

        counts = fetch_dataset(dataset, layout)
    click.echo(
        f"{dataset} is cached in {layout.datasets}: "
        f"{counts['train']} training and {counts['test']} test rows"
    )

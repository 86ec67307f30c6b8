"""`kerasjobs embed`: options in, a frozen EmbedConfig to the library."""

from __future__ import annotations

from pathlib import Path

import click

from kerasjobs.config import SPLITS, EmbedConfig
from kerasjobs.jobs.errors import translated_errors
from kerasjobs.jobs.options import root_option

positive = click.IntRange(min=1)


@click.command(name="embed")
@root_option
@click.option(
    "--run",
    "run_name",
    required=True,
    metavar="NAME|PATH",
    help="The trained run: its name under the root, or its folder.",
)
@click.option(
    "--layer",
    metavar="NAME",
    default=None,
    help="The layer whose output is exported [default: 'embedding', else the "
    "layer before the classifier].",
)
@click.option(
    "--split",
    type=click.Choice(SPLITS),
    default="test",
    help="Embed the test images, or all training images (validation included).",
)
@click.option(
    "--limit",
    type=positive,
    default=None,
    help="Embed at most this many images [default: all, up to the 100,000 the "
    "Projector shows].",
)
@click.option("--batch-size", type=positive, default=256, help="Images per batch.")
def command(
    root: Path,
    run_name: str,
    layer: str | None,
    split: str,
    limit: int | None,
    batch_size: int,
) -> None:
    """Export a run's embeddings to TensorBoard's Embedding Projector.

    The export (vectors, metadata.tsv, sprite.png, projector_config.pbtxt and
    embeddings.json) replaces the run's previous one in <run>/logs/projector.
    """
    config = EmbedConfig(
        root=root,
        run=run_name,
        layer=layer,
        split=split,
        limit=limit,
        batch_size=batch_size,
    )
    with translated_errors():
        from kerasjobs.embed import describe, run_embedding

        result = run_embedding(config)
    click.echo(describe(result))

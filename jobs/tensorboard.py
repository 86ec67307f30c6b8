"""`kerasjobs tensorboard`: serve the shared root on this machine."""

from __future__ import annotations

from pathlib import Path

import click

from kerasjobs.jobs.errors import translated_errors
from kerasjobs.jobs.options import root_option


@click.command(name="tensorboard")
@root_option
@click.option(
    "--host",
    default="127.0.0.1",
    help="Address to listen on (0.0.0.0 in a pod, to reach it from outside).",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=6006,
    help="Port to listen on (0: any free port; the log says which).",
)
@click.option(
    "--path-prefix",
    default="",
    help="Serve every page under this path, as behind an ingress (/tensorboard).",
)
def command(root: Path, host: str, port: int, path_prefix: str) -> None:
    """Serve TensorBoard for the root until Ctrl-C.

    It shows every run's scalars, graphs, histograms, hyperparameters and
    Projector exports, as the cluster's TensorBoard pod does.
    """
    with translated_errors():
        from kerasjobs.board import serve_tensorboard

        serve_tensorboard(root, host, port, path_prefix)

"""Options shared by several jobs, declared once."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import click

Decorator = Callable[[Callable], Callable]


def root_option(function: Callable) -> Callable:
    return click.option(
        "--root",
        type=click.Path(file_okay=False, path_type=Path),
        default=Path("runs"),
        envvar="KERASJOBS_ROOT",
        show_envvar=True,
        help="The shared root holding runs, logs, datasets and tuning projects.",
    )(function)


def data_options(function: Callable) -> Callable:
    """--dataset, --validation-split and --seed."""
    decorators: list[Decorator] = [
        click.option(
            "--dataset",
            default="digits",
            metavar="NAME|PATH",
            help="digits (bundled, offline), mnist, fashion_mnist, a .npz file "
            "with x_train/y_train/x_test/y_test, or a folder of IDX files.",
        ),
        click.option(
            "--validation-split",
            type=click.FloatRange(0, 1, min_open=True, max_open=True),
            default=0.1,
            help="Fraction of the training rows held out for validation.",
        ),
        click.option(
            "--seed",
            type=int,
            default=0,
            help="Seed for shuffling, the split and weight initialisation.",
        ),
    ]
    for decorator in reversed(decorators):
        function = decorator(function)
    return function


def model_option(function: Callable) -> Callable:
    return click.option(
        "--model",
        default="mlp",
        metavar="mlp|cnn|MODULE:FUNCTION",
        help="A built-in model, or your builder taking (input_shape, "
        "num_classes) and returning an uncompiled keras.Model.",
    )(function)

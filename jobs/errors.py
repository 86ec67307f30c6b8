"""Turns the library's exceptions into click's one-line errors."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import click

from kerasjobs.errors import KerasJobsError


class JobError(click.ClickException):
    """A ClickException that carries the library error's exit code."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@contextlib.contextmanager
def translated_errors() -> Iterator[None]:
    """Re-raise KerasJobsError as a one-line click error with its exit code."""
    try:
        yield
    except KerasJobsError as error:
        message = str(error) or f"{type(error).__name__} (no detail given)"
        raise JobError(message, error.exit_code) from None

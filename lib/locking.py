"""Exclusive, non-blocking file locks that keep two processes off one run."""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path

from kerasjobs.errors import RunError


@contextlib.contextmanager
def exclusive(lock_file: Path, busy_message: str) -> Iterator[None]:
    """Hold an flock on `lock_file`; raise RunError(busy_message) if taken."""
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_file, "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunError(busy_message) from None
        yield

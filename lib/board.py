"""Serve TensorBoard for a shared root, as the cluster's TensorBoard pod does."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from kerasjobs.errors import InputError, RunError

logger = logging.getLogger(__name__)


def serve_tensorboard(root: Path, host: str, port: int, path_prefix: str) -> None:
    """Serve TensorBoard for `root` until Ctrl-C, as the cluster's pod does.

    Raises:
        InputError: the root is not a folder.
        RunError: the server cannot start (the port is taken, say).
    """
    from tensorboard import program

    if not root.is_dir():
        raise InputError(
            f"the root {str(root)!r} is not a folder: pass --root (or "
            "KERASJOBS_ROOT) with the folder your runs are in"
        )
    argv = [None, "--logdir", str(root), "--host", host, "--port", str(port)]
    if path_prefix:
        argv += ["--path_prefix", path_prefix]
    # TensorBoard logs every start-up step at INFO; keep them for --log-level debug.
    if logger.getEffectiveLevel() > logging.DEBUG:
        logging.getLogger("tensorboard").setLevel(logging.WARNING)
    board = program.TensorBoard()
    board.configure(argv=argv)
    try:
        url = board.launch()
    except program.TensorBoardServerException as error:
        raise RunError(
            f"TensorBoard cannot serve on {host}:{port}: {error.msg}"
        ) from None

    logger.info("TensorBoard serves %s at %s (Ctrl-C stops it)", root, url)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        logger.info("TensorBoard stopped")

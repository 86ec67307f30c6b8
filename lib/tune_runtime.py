"""Process set-up for a tuning job: Keras Tuner's variables, GPUs, SIGTERM."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import subprocess
import threading
from collections.abc import Iterator
from typing import Any

from kerasjobs.errors import RunError
from kerasjobs.tune_config import Role, TuneConfig

logger = logging.getLogger(__name__)

_KERASTUNER_VARIABLES = (
    "KERASTUNER_TUNER_ID",
    "KERASTUNER_ORACLE_IP",
    "KERASTUNER_ORACLE_PORT",
)


class Terminated(BaseException):
    """SIGTERM arrived. A BaseException, so that no `except Exception` in
    Keras or Keras Tuner records it as a failed trial."""


class SearchInterruptedError(RunError):
    """The job stopped on SIGTERM; rerunning it resumes. Exit 143 (128 + 15)."""

    exit_code = 143


def set_keras_tuner_environment(role: Role) -> None:
    """Set (or clear) the KERASTUNER_* variables Keras Tuner reads for `role`.

    Keras Tuner decides whether it is a worker from these variables alone, so
    a standalone search must not inherit them.
    """
    if role.kind == "standalone":
        for name in _KERASTUNER_VARIABLES:
            os.environ.pop(name, None)
        return
    os.environ["KERASTUNER_TUNER_ID"] = role.tuner_id
    os.environ["KERASTUNER_ORACLE_IP"] = str(role.host)
    os.environ["KERASTUNER_ORACLE_PORT"] = str(role.port)


def visible_gpus() -> list[str]:
    """The GPUs this process may use: CUDA_VISIBLE_DEVICES, else nvidia-smi's."""
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        return [gpu.strip() for gpu in listed.split(",") if gpu.strip()]
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        result = subprocess.run(
            ["nvidia-smi", "--query-gpu=index", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in result.stdout.splitlines() if line.strip()]


def select_gpus(setting: str, role: Role) -> None:
    """Apply --gpu before TensorFlow starts.

    auto: the chief trains nothing and sees no GPU; a worker with an index
    (JOB_COMPLETION_INDEX, or the number its id ends with) sees only GPU
    `index % count` when several are visible; otherwise nothing changes.
    none: no GPU. all: every visible GPU.
    """
    if setting == "all":
        return
    if setting == "none" or (setting == "auto" and role.kind == "chief"):
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
        return
    if role.kind != "worker" or role.worker_index is None:
        return
    gpus = visible_gpus()
    if len(gpus) <= 1:
        return
    chosen = gpus[role.worker_index % len(gpus)]
    os.environ["CUDA_VISIBLE_DEVICES"] = chosen
    logger.info("worker %s uses GPU %s of %s", role.tuner_id, chosen, ",".join(gpus))


# Set by the SIGTERM handler; the search checks it between batches, trials
# and requests. Raising from the handler itself is unreliable: the exception
# lands wherever the main thread happens to be, even in a weakref callback
# where Python only prints it.
_TERMINATING = threading.Event()


def _note_sigterm(signum: int, frame: object) -> None:
    _TERMINATING.set()


def check_terminated() -> None:
    """Raise Terminated if SIGTERM has arrived."""
    if _TERMINATING.is_set():
        raise Terminated()


@contextlib.contextmanager
def terminate_on_sigterm() -> Iterator[None]:
    """Make SIGTERM end the search at the next check (`check_terminated`).

    Kubernetes sends SIGTERM, then SIGKILL after the grace period (30 s by
    default); the checks come at least once per training batch, trial and
    request, so the job unwinds well before that.
    """
    previous = signal.signal(signal.SIGTERM, _note_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def trial_strategy(config: TuneConfig) -> Any:
    """The strategy every trial of this process trains under, or None.

    A worker holding several GPUs (--gpu all) can train each trial with
    MirroredStrategy over them; --cpu-replicas tries that on a CPU.
    """
    from kerasjobs.devices import choose_strategy

    strategy, name = choose_strategy(config.strategy)
    if name == "default":
        return None
    logger.info(
        "each trial trains with strategy %s over %d replicas",
        name,
        strategy.num_replicas_in_sync,
    )
    return strategy

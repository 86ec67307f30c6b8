"""The frozen configuration of `kerasjobs tune`, and each process's role."""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from kerasjobs.errors import InputError

TUNERS = ("random", "bayesian", "hyperband")
OBJECTIVES = ("val_accuracy", "val_loss", "accuracy", "loss")
ROLES = ("standalone", "chief", "worker")
GPU_SETTINGS = ("auto", "all", "none")

# Fields that decide what each trial computes: chief and workers must agree on
# them, and they make up the default project name's hash. --max-trials is not
# one of them, so rerunning with a larger budget extends the same search.
_SEARCH_FIELDS = (
    "dataset",
    "validation_split",
    "seed",
    "tuner",
    "executions_per_trial",
    "objective",
    "epochs",
    "batch_size",
    "space",
    "hypermodel",
)


@dataclass(frozen=True)
class TuneConfig:
    """Everything `kerasjobs tune` needs; the search part is saved in search.json."""

    root: Path = Path("runs")
    dataset: str = "digits"
    validation_split: float = 0.1
    seed: int = 0
    project: str | None = None
    tuner: str = "random"
    max_trials: int = 10
    executions_per_trial: int = 1
    objective: str = "val_accuracy"
    epochs: int = 10
    batch_size: int = 64
    space: Path | None = None
    hypermodel: str | None = None
    max_retries_per_trial: int = 1
    max_consecutive_failed_trials: int = 3
    role: str | None = None
    worker_id: str | None = None
    oracle: str | None = None
    trial_timeout: float = 120.0
    connect_timeout: float = 300.0
    gpu: str = "auto"
    strategy: str = "default"
    cpu_replicas: int = 1
    verbose: str = "auto"

    def search_settings(self) -> dict[str, Any]:
        """The options that decide what the trials compute, JSON-friendly."""
        data = asdict(self)
        settings = {name: data[name] for name in _SEARCH_FIELDS}
        # The space file by content, so a file mounted elsewhere still matches.
        settings["space"] = file_digest(self.space) if self.space else None
        return settings

    def search_id(self) -> str:
        """A short hash of the search settings, the same in every process."""
        text = json.dumps(self.search_settings(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:8]

    @property
    def project_name(self) -> str:
        """--project, else `<dataset>-<tuner>-<hash>`: a rerun resumes it."""
        if self.project:
            return self.project
        dataset = Path(self.dataset).stem if "/" in self.dataset else self.dataset
        safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in dataset)
        return f"{safe}-{self.tuner}-{self.search_id()}"[:128]


def file_digest(path: Path) -> str:
    """A short hash of a file's bytes, or of its name when it cannot be read."""
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:12]
    except OSError:
        return str(path)


@dataclass(frozen=True)
class Role:
    """What this process is in the search, and how it reaches the oracle."""

    kind: str
    tuner_id: str
    host: str | None = None
    port: int | None = None
    worker_index: int | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


def parse_oracle_address(value: str) -> tuple[str, int]:
    """HOST:PORT into its parts.

    Raises:
        InputError: not HOST:PORT with a port from 1 to 65535.
    """
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise InputError(
            f"--oracle {value!r} is not HOST:PORT: give the chief's address, "
            "for example tune-chief:8000 (the chief binds 0.0.0.0:PORT)"
        )
    return host.strip("[]"), int(port)


def resolve_role(config: TuneConfig, environ: dict[str, str] | None = None) -> Role:
    """The role from the options, else from Keras Tuner's KERASTUNER_* variables.

    Raises:
        InputError: a distributed role without an oracle address, or a worker
            id that Keras Tuner would mistake for the chief.
    """
    environ = os.environ if environ is None else environ
    address = config.oracle
    if address is None and environ.get("KERASTUNER_ORACLE_IP"):
        port = environ.get("KERASTUNER_ORACLE_PORT", "")
        address = f"{environ['KERASTUNER_ORACLE_IP']}:{port}"
    env_id = environ.get("KERASTUNER_TUNER_ID")
    kind = config.role
    if kind is None:
        if address is None:
            kind = "standalone"
        else:
            kind = "chief" if env_id and "chief" in env_id else "worker"
    if kind == "standalone":
        return Role("standalone", "tuner0")

    if address is None:
        raise InputError(
            f"--role {kind} needs the oracle's address: pass --oracle HOST:PORT "
            "or set KERASTUNER_ORACLE_IP and KERASTUNER_ORACLE_PORT"
        )
    host, port = parse_oracle_address(address)
    if kind == "chief":
        return Role("chief", "chief", host, port)
    index = environ.get("JOB_COMPLETION_INDEX")
    tuner_id = config.worker_id or env_id
    if tuner_id is None:
        tuner_id = f"worker-{index}" if index else f"worker-{socket.gethostname()}"
    check_worker_id(tuner_id)
    return Role("worker", tuner_id, host, port, worker_index(tuner_id, index))


def check_worker_id(tuner_id: str) -> None:
    """Raise InputError for ids Keras Tuner cannot use for a worker."""
    if "chief" in tuner_id or not re.fullmatch(r"[A-Za-z0-9._-]{1,128}", tuner_id):
        raise InputError(
            f"worker id {tuner_id!r} is not usable: use letters, digits, '.', '_' "
            "and '-', and never the word 'chief' (Keras Tuner takes any id "
            "containing it for the chief)"
        )


def worker_index(tuner_id: str, job_index: str | None) -> int | None:
    """The Indexed Job's index, else the number a worker id ends with."""
    if job_index and job_index.isdigit():
        return int(job_index)
    match = re.search(r"(\d+)$", tuner_id)
    return int(match.group(1)) if match else None


def check_config(config: TuneConfig) -> None:
    """Raise InputError for options no search can use."""
    for name in ("max_trials", "executions_per_trial", "epochs", "batch_size"):
        value = getattr(config, name)
        if value < 1:
            flag = "--" + name.replace("_", "-")
            raise InputError(f"{flag} must be a positive integer, got {value}")
    if config.max_consecutive_failed_trials < 1:
        raise InputError(
            "--max-consecutive-failed-trials must be at least 1, got "
            f"{config.max_consecutive_failed_trials}"
        )
    for name in ("trial_timeout", "connect_timeout"):
        if getattr(config, name) <= 0:
            flag = "--" + name.replace("_", "-")
            raise InputError(f"{flag} must be a positive number of seconds")
    if config.tuner not in TUNERS:
        raise InputError(f"--tuner {config.tuner!r}: use one of {', '.join(TUNERS)}")
    if config.space is not None and not Path(config.space).is_file():
        raise InputError(
            f"--space {str(config.space)!r} is not a file: give a YAML or JSON "
            "search-space file"
        )

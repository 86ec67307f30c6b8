"""Typed, frozen configurations that the CLI builds and the library runs."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from kerasjobs.errors import InputError

SCHEDULES = ("constant", "step", "exponential", "cosine")
BUILTIN_DATASETS = ("digits", "mnist", "fashion_mnist")
BUILTIN_MODELS = ("mlp", "cnn")
STRATEGIES = ("auto", "default", "mirrored", "multi-worker")

# Per-schedule default decay rates, used when --lr-decay-rate is not given.
DEFAULT_DECAY_RATES = {"step": 0.5, "exponential": 0.9}

# Fields that do not change what a run computes, so they stay out of its id.
_NOT_IN_RUN_ID = ("root", "run_name", "overwrite", "verbose")


@dataclass(frozen=True)
class ScheduleConfig:
    """How the learning rate moves from epoch to epoch."""

    name: str = "constant"
    learning_rate: float = 3e-3
    warmup_epochs: int = 0
    decay_rate: float | None = None
    step_epochs: int = 10

    @property
    def resolved_decay_rate(self) -> float:
        if self.decay_rate is not None:
            return self.decay_rate
        return DEFAULT_DECAY_RATES.get(self.name, 1.0)


@dataclass(frozen=True)
class TrainConfig:
    """Everything `kerasjobs train` needs; saved as the run's config.json."""

    root: Path = Path("runs")
    dataset: str = "digits"
    model: str = "mlp"
    run_name: str | None = None
    epochs: int = 20
    batch_size: int = 256
    validation_split: float = 0.1
    seed: int = 0
    monitor: str = "val_accuracy"
    patience: int = 5
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    steps_per_execution: int = 64
    jit_compile: str = "auto"
    mixed_precision: str = "auto"
    strategy: str = "auto"
    cpu_replicas: int = 1
    histogram_freq: int = 1
    overwrite: bool = False
    verbose: str = "auto"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["root"] = str(self.root)
        data["schedule"]["resolved_decay_rate"] = self.schedule.resolved_decay_rate
        return data

    def run_id(self) -> str:
        """A short hash of what the run computes, stable across reruns."""
        data = {k: v for k, v in self.to_dict().items() if k not in _NOT_IN_RUN_ID}
        digest = hashlib.sha256(json.dumps(data, sort_keys=True).encode())
        return digest.hexdigest()[:8]

    def default_run_name(self) -> str:
        """`<dataset>-<model>-<hash>`: rerunning the same command resumes it."""
        dataset = Path(self.dataset).stem if "/" in self.dataset else self.dataset
        model = self.model.rsplit(":", 1)[-1]
        safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in dataset)
        return f"{safe}-{model}-{self.run_id()}"[:128]

    @property
    def resolved_run_name(self) -> str:
        return self.run_name or self.default_run_name()


SPLITS = ("test", "train")


@dataclass(frozen=True)
class EmbedConfig:
    """Everything `kerasjobs embed` needs; saved in the export's record."""

    root: Path = Path("runs")
    run: str = ""
    layer: str | None = None
    split: str = "test"
    limit: int | None = None
    batch_size: int = 256


def check_embed_config(config: EmbedConfig) -> None:
    """Raise InputError for options no export can use."""
    if config.limit is not None and config.limit < 1:
        raise InputError(f"--limit must be a positive integer, got {config.limit}")
    if config.batch_size < 1:
        raise InputError(
            f"--batch-size must be a positive integer, got {config.batch_size}"
        )
    if config.split not in SPLITS:
        raise InputError(f"--split must be test or train, got {config.split!r}")

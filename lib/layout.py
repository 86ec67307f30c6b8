"""The shared-volume layout: the one place that knows where things live.

<root>/
  datasets/                  downloads cached once per cluster
  <run>/                     one training run
    config.json              resolved options, seed, versions, commit
    state.json               resume bookkeeping (epochs done, callbacks)
    history.csv              one row per finished epoch
    metrics.json             status, test metrics, best epoch, durations
    checkpoints/best.keras   best model by the monitored metric
    checkpoints/best.json    that model's score and epoch
    logs/                    TensorBoard event files (train, validation)
    backup/                  BackupAndRestore's private folder
  tuning/<project>/          a Keras Tuner project
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from kerasjobs.errors import InputError

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
RESERVED_NAMES = ("datasets", "tuning")


def check_name(name: str, what: str) -> str:
    """Return `name` if it is safe as one folder name, else raise InputError."""
    if not _NAME.match(name) or name in RESERVED_NAMES:
        raise InputError(
            f"{what} {name!r} is not a valid name: use letters, digits, '.', "
            f"'_' and '-' (at most 128, not starting with a symbol), and not "
            f"{' or '.join(RESERVED_NAMES)}"
        )
    return name


@dataclass(frozen=True)
class RunPaths:
    """Where one training run keeps its files."""

    directory: Path

    @property
    def name(self) -> str:
        return self.directory.name

    @property
    def config(self) -> Path:
        return self.directory / "config.json"

    @property
    def state(self) -> Path:
        return self.directory / "state.json"

    @property
    def history(self) -> Path:
        return self.directory / "history.csv"

    @property
    def metrics(self) -> Path:
        return self.directory / "metrics.json"

    @property
    def checkpoints(self) -> Path:
        return self.directory / "checkpoints"

    @property
    def best_model(self) -> Path:
        return self.checkpoints / "best.keras"

    @property
    def best_model_partial(self) -> Path:
        # ModelCheckpoint writes here; the file is renamed over best.keras only
        # once complete, so a kill mid-write never corrupts the best model.
        return self.checkpoints / "partial-best.keras"

    @property
    def best_record(self) -> Path:
        return self.checkpoints / "best.json"

    @property
    def logs(self) -> Path:
        return self.directory / "logs"

    @property
    def backup(self) -> Path:
        return self.directory / "backup"

    @property
    def lock(self) -> Path:
        return self.directory / ".lock"

    @property
    def projector(self) -> Path:
        # The Projector export has a folder of its own under logs/ with a small
        # event file, so TensorBoard lists it as a run and the Projector finds it.
        return self.logs / "projector"

    @property
    def projector_config(self) -> Path:
        return self.projector / "projector_config.pbtxt"

    @property
    def embedding_vectors(self) -> Path:
        return self.projector / "vectors.bin"

    @property
    def embedding_vectors_text(self) -> Path:
        return self.projector / "vectors.tsv"

    @property
    def embedding_metadata(self) -> Path:
        return self.projector / "metadata.tsv"

    @property
    def embedding_sprite(self) -> Path:
        return self.projector / "sprite.png"

    @property
    def embedding_record(self) -> Path:
        return self.projector / "embeddings.json"

    @property
    def embed_lock(self) -> Path:
        return self.directory / ".embed.lock"

    def projector_scratch(self, purpose: str, token: str) -> Path:
        # Hidden siblings of `projector`: a new export is staged in one and the
        # old export is moved to one, so a swap is two renames in one folder.
        return self.logs / f".projector-{purpose}-{token}"

    def projector_scratch_folders(self) -> list[Path]:
        return sorted(self.logs.glob(".projector-*-*"))


@dataclass(frozen=True)
class Layout:
    """The shared root and the folders below it."""

    root: Path

    @property
    def datasets(self) -> Path:
        return self.root / "datasets"

    @property
    def tuning(self) -> Path:
        return self.root / "tuning"

    def run(self, name: str) -> RunPaths:
        return RunPaths(self.root / check_name(name, "run name"))

    def tuning_project(self, name: str) -> Path:
        return self.tuning / check_name(name, "tuning project")

    def tuning_paths(self, name: str) -> TuningPaths:
        return TuningPaths(self.tuning_project(name))

    def runs(self) -> list[RunPaths]:
        """The runs under the root (valid names holding a config.json), by name."""
        if not self.root.is_dir():
            return []
        return [
            RunPaths(child)
            for child in sorted(self.root.iterdir())
            if _NAME.match(child.name)
            and child.name not in RESERVED_NAMES
            and (child / "config.json").is_file()
        ]

    def tuning_projects(self) -> list[TuningPaths]:
        """The tuning projects under the root, by name."""
        if not self.tuning.is_dir():
            return []
        return [
            TuningPaths(child)
            for child in sorted(self.tuning.iterdir())
            if child.is_dir() and _NAME.match(child.name)
        ]

    def find_run(self, name_or_path: str) -> RunPaths:
        """Resolve a run given by name (below the root) or by path."""
        candidate = Path(name_or_path)
        if candidate.is_dir() and (candidate / "config.json").exists():
            return RunPaths(candidate.resolve())
        if os.sep not in name_or_path:
            return self.run(name_or_path)
        return RunPaths(candidate)

    def ensure_writable(self) -> None:
        """Create the root if needed and prove that files can be written in it."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            probe = self.root / f".write-probe-{os.getpid()}"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as error:
            raise InputError(
                f"the root {str(self.root)!r} is not writable ({error.strerror}): "
                "pass --root (or KERASJOBS_ROOT) with a folder you can write to"
            ) from None


@dataclass(frozen=True)
class TuningPaths:
    """Where one Keras Tuner project keeps its state and its results.

    Keras Tuner itself writes oracle.json, <tuner id>.json and trial_<id>/
    (trial.json and the trial's weights) straight into `directory`.
    """

    directory: Path

    @property
    def name(self) -> str:
        return self.directory.name

    @property
    def tuner_directory(self) -> Path:
        # Keras Tuner's `directory` argument; its `project_name` is `name`.
        return self.directory.parent

    @property
    def logs(self) -> Path:
        return self.directory / "logs"

    @property
    def search_record(self) -> Path:
        return self.directory / "search.json"

    @property
    def best_hyperparameters(self) -> Path:
        return self.directory / "best_hyperparameters.json"

    @property
    def trials_table(self) -> Path:
        return self.directory / "trials.csv"

    @property
    def best_model(self) -> Path:
        return self.directory / "best_model.keras"

    @property
    def best_model_partial(self) -> Path:
        # Saved here first and renamed, so a kill never leaves half a model.
        return self.directory / "partial-best_model.keras"

    def trial_directory(self, trial_id: str) -> Path:
        return self.directory / f"trial_{trial_id}"

    def trial_logs(self, trial_id: str) -> Path:
        return self.logs / trial_id

"""The embed job: a run's best model, its images, a Projector export."""

from __future__ import annotations

import logging
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kerasjobs import projector
from kerasjobs.config import EmbedConfig, check_embed_config
from kerasjobs.data import Dataset, load_dataset
from kerasjobs.errors import InputError, RunError
from kerasjobs.layout import Layout, RunPaths
from kerasjobs.locking import exclusive
from kerasjobs.models import EMBEDDING_LAYER, resolve_builder
from kerasjobs.records import (
    git_commit,
    library_versions,
    read_json,
    utc_now,
    write_json_atomic,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Part:
    """A slice of one subset of the data: test, train or validation rows."""

    subset: str
    images: np.ndarray
    labels: np.ndarray


@dataclass(frozen=True)
class EmbedResult:
    """Where the export went, and its record."""

    run: RunPaths
    record: dict[str, Any]


def find_trained_run(layout: Layout, name_or_path: str) -> tuple[RunPaths, dict]:
    """The run and its config.json, once it has a best checkpoint.

    Raises:
        InputError: no such run.
        RunError: the run has no checkpoint yet, or an unreadable config.
    """
    paths = layout.find_run(name_or_path)
    try:
        record = read_json(paths.config)
    except (OSError, ValueError) as error:
        raise RunError(f"cannot read {paths.config}: {error}") from None
    if record is None:
        runs = [run.name for run in layout.runs()][:10]
        known = f"runs there: {', '.join(runs)}" if runs else "it holds no runs"
        raise InputError(
            f"no run {name_or_path!r} under the root {str(layout.root)!r} "
            f"({known}): pass --run with a run's name or folder, and --root"
        )
    if not paths.best_model.is_file():
        raise RunError(
            f"run {paths.name!r} has no checkpoint {paths.best_model} yet: "
            "train it (kerasjobs train) until it saves a best model"
        )
    return paths, record


def select_parts(
    dataset: Dataset, split: str, limit: int | None
) -> tuple[list[Part], int]:
    """The first `limit` rows of the split (train: train, then validation)."""
    if split == "test":
        parts = [Part("test", dataset.x_test, dataset.y_test)]
    else:
        parts = [
            Part("train", dataset.x_train, dataset.y_train),
            Part("validation", dataset.x_val, dataset.y_val),
        ]
    available = sum(len(part.labels) for part in parts)
    count = min(limit or available, available, projector.MAX_POINTS)
    if count < min(limit or available, available):
        logger.warning("exporting %d rows, all the Projector shows", count)

    # Views, not copies: memory stays at what load_dataset already holds.
    selected, left = [], count
    for part in parts:
        taken = min(left, len(part.labels))
        if taken:
            selected.append(Part(part.subset, part.images[:taken], part.labels[:taken]))
        left -= taken
    return selected, count


def load_best_model(paths: RunPaths, model_spec: str):
    """The run's best checkpoint as a Keras model.

    Raises:
        InputError: the run's own model module cannot be imported.
        RunError: the checkpoint cannot be read.
    """
    import keras

    # A user's builder module may register custom layers the file refers to.
    if ":" in model_spec:
        resolve_builder(model_spec)
    try:
        return keras.models.load_model(paths.best_model)
    except Exception as error:
        raise RunError(
            f"cannot load {paths.best_model} ({type(error).__name__}: {error}): "
            "train the run again with --overwrite"
        ) from None


def default_layer(model) -> str:
    """The built-in models' "embedding" layer, else the layer feeding the last."""
    names = [layer.name for layer in model.layers]
    if EMBEDDING_LAYER in names:
        return EMBEDDING_LAYER
    last_input = model.layers[-1].input
    for layer in model.layers[:-1]:
        if layer.output is last_input:
            return layer.name
    return names[-2]


def embedding_model(model, layer_name: str | None, run_name: str):
    """A model giving (the layer's output, the class probabilities).

    Raises:
        InputError: no layer of that name, or one with several outputs.
    """
    import keras

    names = [layer.name for layer in model.layers]
    layer_name = layer_name or default_layer(model)
    if layer_name not in names:
        raise InputError(
            f"the model of run {run_name!r} has no layer {layer_name!r}: pass "
            f"--layer with one of {', '.join(names)}"
        )
    try:
        output = model.get_layer(layer_name).output
    except (AttributeError, ValueError):
        raise InputError(
            f"layer {layer_name!r} of run {run_name!r} has several outputs: "
            "pass --layer with a layer that has one"
        ) from None
    return keras.Model(model.inputs, [output, model.outputs[0]]), layer_name


def infer(
    model, parts: list[Part], batch_size: int
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Yield (images, flattened vectors, predicted labels), batch by batch.

    The images go through tf.data from a generator of slices, so only a few
    batches are ever copied out of the arrays load_dataset holds.
    """
    import tensorflow as tf

    def batches() -> Iterator[np.ndarray]:
        for part in parts:
            for start in range(0, len(part.labels), batch_size):
                yield part.images[start : start + batch_size]

    spec = tf.TensorSpec((None, *parts[0].images.shape[1:]), tf.float32)
    dataset = tf.data.Dataset.from_generator(batches, output_signature=spec)
    forward = tf.function(lambda images: model(images, training=False), autograph=False)
    for images in dataset.prefetch(2):
        vectors, probabilities = forward(images)
        yield (
            images.numpy(),
            vectors.numpy().reshape(len(images), -1),
            np.argmax(probabilities.numpy(), axis=-1),
        )


def publish(staging: Path, paths: RunPaths, token: str) -> None:
    """Move the staged export into place, replacing the old one.

    Two renames in one folder: a reader sees the old export, for an instant
    none, then the new one; never a mix of the two.
    """
    old = None
    if paths.projector.exists():
        old = paths.projector_scratch("old", token)
        paths.projector.rename(old)
    try:
        staging.rename(paths.projector)
    except OSError:
        if old is not None:
            old.rename(paths.projector)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def run_embedding(config: EmbedConfig) -> EmbedResult:
    """Export a run's embeddings for TensorBoard's Projector.

    Raises:
        InputError: bad options, no such run or layer (nothing is written).
        RunError: the run has no usable checkpoint or data for it.
    """
    # Check everything the user gave before anything is written.
    check_embed_config(config)
    layout = Layout(config.root)
    paths, run_config = find_trained_run(layout, config.run)
    dataset = load_dataset(
        run_config["dataset"],
        layout.datasets,
        run_config["validation_split"],
        run_config["seed"],
    )
    parts, count = select_parts(dataset, config.split, config.limit)
    model = load_best_model(paths, run_config["model"])
    expected = tuple(model.inputs[0].shape[1:])
    if expected != dataset.input_shape:
        raise RunError(
            f"the model of run {paths.name!r} takes inputs of shape {expected} but "
            f"dataset {dataset.name!r} now has rows of shape {dataset.input_shape}"
            ": the data changed since training"
        )
    model, layer_name = embedding_model(model, config.layer, paths.name)
    class_names = run_config.get("data", {}).get("class_names") or list(
        dataset.class_names
    )

    started = time.perf_counter()
    busy = f"run {paths.name!r} is being embedded by another process: wait for it"
    with exclusive(paths.embed_lock, busy):
        record = export(config, paths, model, layer_name, parts, class_names)
    logger.info(
        "exported %d x %d vectors of layer %s in %.1f s to %s",
        record["count"],
        record["dimension"],
        layer_name,
        time.perf_counter() - started,
        paths.projector,
    )
    return EmbedResult(paths, record)


def export(
    config: EmbedConfig,
    paths: RunPaths,
    model,
    layer_name: str,
    parts: list[Part],
    class_names: list[str],
) -> dict[str, Any]:
    """Stage the export in a scratch folder, then swap it into place.

    A failure or Ctrl-C removes the scratch folder and leaves the old export
    as it was. Call it holding the run's export lock.
    """
    # Scratch folders left by a killed export hold no event file, so
    # TensorBoard never showed them; they can go.
    for leftover in paths.projector_scratch_folders():
        shutil.rmtree(leftover, ignore_errors=True)
    token = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
    staging = paths.projector_scratch("new", token)
    staging.mkdir(parents=True)
    started = time.perf_counter()
    try:
        record = projector.write_export(
            staging,
            paths,
            infer(model, parts, config.batch_size),
            image_shape=parts[0].images.shape[1:],
            labels=np.concatenate([part.labels for part in parts]),
            subsets=[part.subset for part in parts for _ in part.labels],
            class_names=class_names,
            tensor_name=layer_name,
        )
        record.update(
            run=paths.name,
            layer=layer_name,
            split=config.split,
            config={**asdict(config), "root": str(config.root)},
            checkpoint=str(paths.best_model),
            checkpoint_epoch=(read_json(paths.best_record) or {}).get("epoch"),
            created_at=utc_now(),
            seconds=round(time.perf_counter() - started, 3),
            versions=library_versions(),
            git_commit=git_commit(),
        )
        write_json_atomic(staging / paths.embedding_record.name, record)
        # Last, so TensorBoard never lists a half-written folder as a run.
        projector.write_event_file(staging, record)
        publish(staging, paths, token)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return record


def describe(result: EmbedResult) -> str:
    """The one-line summary printed at the end of an export."""
    paths, record = result.run, result.record
    return (
        f"run {paths.name}: {record['count']} {record['split']} images embedded "
        f"by layer {record['layer']} ({record['dimension']} dimensions) in "
        f"{paths.projector}; open TensorBoard's Projector and pick run "
        f"{paths.name}/{paths.projector.relative_to(paths.directory)}"
    )

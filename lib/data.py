"""Datasets: resolve --dataset, check the arrays, split, and feed tf.data."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kerasjobs import sources
from kerasjobs.config import BUILTIN_DATASETS
from kerasjobs.errors import InputError

logger = logging.getLogger(__name__)

FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)


@dataclass(frozen=True)
class Dataset:
    """Float32 images in [0, 1] with a channel axis, and integer labels."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...]

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def load_dataset(
    spec: str, datasets_cache: Path, validation_split: float, seed: int
) -> Dataset:
    """Load `spec` (a built-in name, an .npz file or an IDX folder).

    Raises:
        InputError: the dataset is unknown, missing or malformed.
    """
    scale = None
    if spec == "digits":
        arrays, scale = sources.load_digits()
    elif spec in ("mnist", "fashion_mnist"):
        arrays = sources.load_keras_dataset(spec, datasets_cache)
    else:
        path = Path(spec)
        if path.is_dir():
            arrays = sources.load_idx_directory(path)
        elif path.is_file():
            arrays = sources.load_npz(path)
        else:
            raise InputError(
                f"unknown dataset {spec!r}: use one of "
                f"{', '.join(BUILTIN_DATASETS)}, a path to an .npz file or a "
                "folder of IDX files"
            )

    check_arrays(arrays, spec)
    num_classes = int(max(arrays["y_train"].max(), arrays["y_test"].max())) + 1
    x_train, y_train, x_val, y_val = split_validation(
        normalize(arrays["x_train"], scale),
        arrays["y_train"].astype(np.int64),
        validation_split,
        seed,
    )
    return Dataset(
        name=spec,
        x_train=x_train,
        y_train=y_train,
        x_val=x_val,
        y_val=y_val,
        x_test=normalize(arrays["x_test"], scale),
        y_test=arrays["y_test"].astype(np.int64),
        class_names=class_names(spec, num_classes),
    )


def class_names(spec: str, num_classes: int) -> tuple[str, ...]:
    """Readable class names: Fashion-MNIST's, else the label numbers."""
    if spec == "fashion_mnist":
        return FASHION_MNIST_CLASSES
    return tuple(str(label) for label in range(num_classes))


def check_arrays(arrays: sources.Arrays, spec: str) -> None:
    """Raise InputError unless the four arrays make a classification set."""
    for split in ("train", "test"):
        images, labels = arrays[f"x_{split}"], arrays[f"y_{split}"]
        where = f"dataset {spec!r}: x_{split}"
        if images.ndim not in (2, 3, 4) or len(images) == 0:
            raise InputError(
                f"{where} has shape {images.shape}: expected a non-empty array "
                "of (N, features), (N, height, width) or (N, height, width, "
                "channels)"
            )
        if not (np.issubdtype(images.dtype, np.integer) or images.dtype.kind == "f"):
            raise InputError(
                f"{where} has dtype {images.dtype}: expected integers (such as "
                "uint8 pixels) or floats"
            )
        if images.dtype.kind == "f" and not np.isfinite(images).all():
            raise InputError(f"{where} holds NaN or infinite values: clean them")
        if labels.shape != (len(images),):
            raise InputError(
                f"dataset {spec!r}: y_{split} has shape {labels.shape} but "
                f"x_{split} has {len(images)} rows: expected one integer label "
                "per row"
            )
        if not np.issubdtype(labels.dtype, np.integer):
            raise InputError(
                f"dataset {spec!r}: y_{split} has dtype {labels.dtype}: "
                "expected integer class labels 0..K-1"
            )
        if labels.min() < 0:
            raise InputError(
                f"dataset {spec!r}: y_{split} holds label {labels.min()}: "
                "labels must be class numbers 0..K-1"
            )
    if arrays["x_train"].shape[1:] != arrays["x_test"].shape[1:]:
        raise InputError(
            f"dataset {spec!r}: x_train rows have shape "
            f"{arrays['x_train'].shape[1:]} but x_test rows have "
            f"{arrays['x_test'].shape[1:]}: they must match"
        )
    train_max, test_max = arrays["y_train"].max(), arrays["y_test"].max()
    if test_max > train_max:
        raise InputError(
            f"dataset {spec!r}: y_test holds label {test_max} but y_train only "
            f"goes up to {train_max}: the test set has a class never trained on"
        )
    if train_max < 1:
        raise InputError(
            f"dataset {spec!r}: y_train holds a single class: a classifier "
            "needs at least two"
        )


def normalize(images: np.ndarray, scale: float | None) -> np.ndarray:
    """Float32 in [0, 1] for integer pixels; a channel axis for 2-D images."""
    if scale is None and np.issubdtype(images.dtype, np.integer):
        scale = float(np.iinfo(images.dtype).max)
    result = images.astype(np.float32)
    if scale:
        result /= scale
    if result.ndim == 3:
        result = result[..., np.newaxis]
    return result


def split_validation(
    images: np.ndarray, labels: np.ndarray, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Hold `fraction` of the training rows out, shuffled by `seed`."""
    count = int(round(len(labels) * fraction))
    if count < 1 or count >= len(labels):
        raise InputError(
            f"--validation-split {fraction} leaves {count} of {len(labels)} "
            "training rows for validation: choose a fraction that keeps at "
            "least one row on each side"
        )
    order = np.random.default_rng(seed).permutation(len(labels))
    held_out, kept = order[:count], order[count:]
    return images[kept], labels[kept], images[held_out], labels[held_out]


def make_tf_dataset(
    images: np.ndarray,
    labels: np.ndarray | None,
    batch_size: int,
    shuffle_seed: int | None = None,
):
    """A batched, prefetched tf.data pipeline over in-memory arrays.

    Unshuffled (evaluation) pipelines are cached after batching. Shuffled
    (training) pipelines shuffle row indices and gather whole batches at once:
    shuffling tens of thousands of single images element by element costs
    more than the training step of a small model.
    """
    import tensorflow as tf

    elements = images if labels is None else (images, labels)
    if shuffle_seed is None:
        dataset = tf.data.Dataset.from_tensor_slices(elements).batch(batch_size)
        return dataset.cache().prefetch(tf.data.AUTOTUNE)

    tensors = tf.nest.map_structure(tf.convert_to_tensor, elements)
    indices = tf.data.Dataset.range(len(images)).shuffle(
        len(images), seed=shuffle_seed, reshuffle_each_iteration=True
    )
    dataset = indices.batch(batch_size).map(
        lambda batch: tf.nest.map_structure(
            lambda tensor: tf.gather(tensor, batch), tensors
        ),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )
    return dataset.prefetch(tf.data.AUTOTUNE)

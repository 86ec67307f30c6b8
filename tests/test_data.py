"""Dataset loaders on files the tests generate, and the tf.data pipeline."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from kerasjobs.data import load_dataset
from kerasjobs.errors import InputError
from kerasjobs.sources import IDX_FILES, load_keras_dataset, read_idx


def make_images(rows: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """MNIST-shaped uint8 images whose brightest row encodes the label."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, rows).astype(np.uint8)
    images = rng.integers(0, 40, (rows, 28, 28)).astype(np.uint8)
    for index, label in enumerate(labels):
        images[index, 2 * label + 4, :] = 255
    return images, labels


def write_idx(path: Path, array: np.ndarray, gzipped: bool) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(
        size.to_bytes(4, "big") for size in array.shape
    )
    data = header + array.astype(np.uint8).tobytes()
    if gzipped:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(data))
    else:
        path.write_bytes(data)


def write_idx_folder(folder: Path, gzipped: bool) -> dict[str, np.ndarray]:
    folder.mkdir(parents=True, exist_ok=True)
    x_train, y_train = make_images(200)
    x_test, y_test = make_images(50, seed=1)
    arrays = {"x_train": x_train, "y_train": y_train, "x_test": x_test,
              "y_test": y_test}  # fmt: skip
    for key, stem in IDX_FILES.items():
        write_idx(folder / stem, arrays[key], gzipped)
    return arrays


def test_digits_ship_offline_and_split_reproducibly(tmp_path):
    first = load_dataset("digits", tmp_path, 0.1, seed=3)
    second = load_dataset("digits", tmp_path, 0.1, seed=3)

    assert first.input_shape == (8, 8, 1) and first.num_classes == 10
    assert first.x_train.dtype == np.float32 and first.x_train.min() >= 0
    assert first.x_train.max() <= 1.0
    total = len(first.y_train) + len(first.y_val) + len(first.y_test)
    assert total == 1797
    np.testing.assert_array_equal(first.y_val, second.y_val)


def test_npz_in_keras_layout(tmp_path):
    x_train, y_train = make_images(120)
    x_test, y_test = make_images(30, seed=2)
    path = tmp_path / "data.npz"
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)

    dataset = load_dataset(str(path), tmp_path, 0.25, seed=0)

    assert dataset.input_shape == (28, 28, 1)
    assert len(dataset.y_val) == 30 and len(dataset.y_train) == 90
    np.testing.assert_allclose(dataset.x_test[..., 0], x_test / 255.0, rtol=1e-6)
    assert dataset.class_names == tuple(str(label) for label in range(10))


@pytest.mark.parametrize("gzipped", [True, False])
def test_idx_folder_gzipped_or_not(tmp_path, gzipped):
    arrays = write_idx_folder(tmp_path / "idx", gzipped)

    dataset = load_dataset(str(tmp_path / "idx"), tmp_path, 0.1, seed=0)

    np.testing.assert_array_equal(dataset.y_test, arrays["y_test"])
    assert dataset.x_test.shape == (50, 28, 28, 1)


def test_truncated_idx_file_is_reported(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte"
    write_idx(path, np.zeros((4, 28, 28), np.uint8), gzipped=False)
    path.write_bytes(path.read_bytes()[:-10])

    with pytest.raises(InputError, match="truncated or corrupt"):
        read_idx(path)


def test_keras_loaders_read_a_filled_cache_without_network(tmp_path):
    # The layout a data-staging job leaves: Keras' own file names.
    cache = tmp_path / "datasets"
    x_train, y_train = make_images(100)
    x_test, y_test = make_images(20, seed=5)
    (cache / "mnist").mkdir(parents=True)
    np.savez(cache / "mnist" / "mnist.npz", x_train=x_train, y_train=y_train,
             x_test=x_test, y_test=y_test)  # fmt: skip
    fashion = write_idx_folder(cache / "fashion-mnist", gzipped=True)

    mnist = load_keras_dataset("mnist", cache)
    np.testing.assert_array_equal(mnist["y_test"], y_test)

    dataset = load_dataset("fashion_mnist", cache, 0.1, seed=0)
    np.testing.assert_array_equal(dataset.y_test, fashion["y_test"])
    assert dataset.class_names[9] == "Ankle boot"


def test_tf_pipeline_batches_and_shuffles_reproducibly():
    from kerasjobs.data import make_tf_dataset

    images = np.arange(20, dtype=np.float32).reshape(20, 1)
    labels = np.arange(20)
    first = [b[1].numpy().tolist() for b in make_tf_dataset(images, labels, 8, 1)]
    second = [b[1].numpy().tolist() for b in make_tf_dataset(images, labels, 8, 1)]

    assert [len(batch) for batch in first] == [8, 8, 4]
    assert first == second and sorted(sum(first, [])) == list(range(20))
    assert sum(first, []) != list(range(20))

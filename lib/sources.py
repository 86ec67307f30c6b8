"""Where raw arrays come from: the bundled digits, Keras' downloads, files."""

from __future__ import annotations

import gzip
import logging
import os
import shutil
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from kerasjobs.errors import InputError, RunError
from kerasjobs.layout import Layout

logger = logging.getLogger(__name__)

Arrays = dict[str, np.ndarray]
SPLIT_KEYS = ("x_train", "y_train", "x_test", "y_test")
# The datasets that load_keras_dataset downloads (and fetch_dataset stages).
DOWNLOADABLE_DATASETS = ("mnist", "fashion_mnist")

# The same files, addresses and hash that keras.datasets use.
KERAS_DATASETS_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
MNIST_SHA256 = "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"
IDX_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
_IDX_DTYPES = {
    0x08: np.uint8,
    0x09: np.int8,
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def load_digits() -> tuple[Arrays, float]:
    """The UCI 8x8 handwritten digits that ship inside scikit-learn.

    Returns the arrays (80% train, 20% test, split once with a fixed seed so
    every run sees the same test set) and the pixel scale (values are 0..16).
    """
    from sklearn.datasets import load_digits as sklearn_digits

    images, labels = sklearn_digits(return_X_y=True)
    images = images.reshape(-1, 8, 8).astype(np.uint8)
    labels = labels.astype(np.int64)
    order = np.random.default_rng(1234).permutation(len(labels))
    test_size = len(labels) // 5
    test, train = order[:test_size], order[test_size:]
    arrays = {
        "x_train": images[train],
        "y_train": labels[train],
        "x_test": images[test],
        "y_test": labels[test],
    }
    return arrays, 16.0


def load_npz(path: Path) -> Arrays:
    """Arrays from an .npz laid out like Keras' mnist.npz."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [key for key in SPLIT_KEYS if key not in archive.files]
            if missing:
                raise InputError(
                    f"{path} lacks the arrays {', '.join(missing)} (it has "
                    f"{', '.join(archive.files) or 'none'}): an .npz dataset "
                    f"needs {', '.join(SPLIT_KEYS)}, as in Keras' mnist.npz"
                )
            return {key: archive[key] for key in SPLIT_KEYS}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as error:
        raise InputError(
            f"{path} is not a readable .npz file ({error}): save one with "
            f"numpy.savez(path, {'=..., '.join(SPLIT_KEYS)}=...)"
        ) from None


def read_idx(path: Path) -> np.ndarray:
    """One array from an IDX file (the original MNIST format), gzipped or not."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as stream:
            data = stream.read()
    except (OSError, EOFError) as error:
        raise InputError(f"{path} cannot be read ({error})") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise InputError(
            f"{path} is not an IDX file (bad magic number): expected the "
            "MNIST format, two zero bytes, a type code and the number of axes"
        )
    dtype = np.dtype(_IDX_DTYPES[data[2]])
    axes = data[3]
    header = 4 + 4 * axes
    shape = tuple(
        int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(axes)
    )
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(data) - header != expected:
        raise InputError(
            f"{path} holds {len(data) - header} bytes of data but its header "
            f"announces shape {shape} ({expected} bytes): the file is truncated "
            "or corrupt"
        )
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)


def find_idx_file(directory: Path, stem: str) -> Path:
    """The IDX file `stem` in `directory`, gzipped or not."""
    for name in (stem, f"{stem}.gz"):
        if (directory / name).is_file():
            return directory / name
    raise InputError(
        f"{directory} has no {stem} or {stem}.gz: an IDX dataset folder needs "
        f"{', '.join(IDX_FILES.values())} (each may be gzipped)"
    )


def load_idx_directory(directory: Path) -> Arrays:
    """The four arrays of an MNIST-style folder of IDX files."""
    return {
        key: read_idx(find_idx_file(directory, stem)) for key, stem in IDX_FILES.items()
    }


def _download(cache: Path, file_name: str, file_hash: str | None) -> Path:
    """Download one file with Keras' get_file, atomically, into `cache`.

    get_file writes straight to its target, so a killed download would leave a
    truncated file that later runs trust; it downloads into a private folder
    instead, and the finished file is renamed into the cache.
    """
    from keras.utils import get_file

    target = cache / file_name
    if target.exists():
        return target

    cache.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".download-", dir=cache))
    try:
        downloaded = get_file(
            fname=file_name,
            origin=KERAS_DATASETS_URL + file_name,
            file_hash=file_hash,
            cache_dir=str(staging),
            cache_subdir="",
        )
        os.replace(downloaded, target)
    except Exception as error:
        raise RunError(
            f"could not download {file_name} into {cache} ({error}): give the "
            "job network access once, or copy the file there by hand"
        ) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    logger.info("cached %s in %s", file_name, cache)
    return target


def load_keras_dataset(name: str, cache: Path) -> Arrays:
    """MNIST or Fashion-MNIST, downloaded once into `cache` on the shared root.

    A file already in the cache is read as it is (the download that put it
    there checked it), so training pods need no network once it is filled.
    """
    if name == "mnist":
        return load_npz(_download(cache / "mnist", "mnist.npz", MNIST_SHA256))

    folder = cache / "fashion-mnist"
    for stem in IDX_FILES.values():
        _download(folder, f"{stem}.gz", None)
    return load_idx_directory(folder)


def fetch_dataset(name: str, layout: Layout) -> dict[str, int]:
    """Fill the shared root's dataset cache with `name`, once, for the cluster.

    Files already in the cache are kept (no network is needed then); the
    arrays are read back so that a truncated or foreign file fails here, in
    the staging job, rather than in every training pod.

    Returns:
        The number of training and test rows, keyed "train" and "test".

    Raises:
        InputError: `name` is not a dataset that Keras downloads, or the root
            is not writable.
        RunError: the download failed.
    """
    if name not in DOWNLOADABLE_DATASETS:
        raise InputError(
            f"cannot fetch dataset {name!r}: expected one of "
            f"{', '.join(DOWNLOADABLE_DATASETS)} (digits ships with scikit-learn "
            "and files are read where they are)"
        )

    layout.ensure_writable()
    arrays = load_keras_dataset(name, layout.datasets)
    return {"train": len(arrays["y_train"]), "test": len(arrays["y_test"])}

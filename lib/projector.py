"""TensorBoard's side: the Projector's file formats, and a server for a root."""

from __future__ import annotations

import codecs
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from kerasjobs.layout import RunPaths

logger = logging.getLogger(__name__)

# The Projector's web page asks for at most this many rows of a tensor and of
# its metadata (`num_rows=1e5` in projector_binary.js), so more are never shown.
MAX_POINTS = 100_000
# The page refuses sprite images larger than this on either side.
SPRITE_MAX_SIDE = 8192
# Image modes Pillow can write for 1, 3 and 4 channels.
_SPRITE_MODES = {1: "L", 3: "RGB", 4: "RGBA"}


def binary_reads_as_text(path: Path, chunk_size: int = 1 << 20) -> bool:
    """Whether TensorBoard would mistake this binary tensor file for TSV.

    The plugin reads every tensor file as UTF-8 TSV first and falls back to
    binary only when a line fails to decode, empty lines skipped (the way
    https://github.com/tensorflow/tensorboard/pull/3685 added binary). So if
    the first non-empty line (up to a 0x0A byte) happens to be valid UTF-8,
    as it is when the vectors start with zeros only (a dead ReLU layer), the
    plugin tries float() on it and the request fails.
    """
    decoder = codecs.getincrementaldecoder("utf-8")()
    has_content = False
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(chunk_size), b""):
            pieces = chunk.split(b"\n")
            for index, piece in enumerate(pieces):
                ends_line = index < len(pieces) - 1
                try:
                    decoder.decode(piece, final=ends_line)
                except UnicodeDecodeError:
                    return False
                has_content = has_content or bool(piece)
                if ends_line:
                    if has_content:
                        return True
                    decoder.reset()
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return has_content


def binary_to_text(source: Path, target: Path, shape: tuple[int, int]) -> None:
    """Rewrite a binary tensor file as TSV, a block of rows at a time."""
    rows = np.memmap(source, dtype=np.float32, mode="r", shape=shape)
    with open(target, "w", encoding="utf-8") as stream:
        for start in range(0, shape[0], 4096):
            np.savetxt(stream, rows[start : start + 4096], fmt="%.8g", delimiter="\t")
    del rows


class SpriteSheet:
    """A square sprite image filled tile by tile, row-major, as batches come.

    Tiles are the images' own size when they fit in SPRITE_MAX_SIDE, else
    shrunk (nearest neighbour); non-square images are centred in square tiles.
    Only the sheet itself is held in memory, as one uint8 array.
    """

    def __init__(self, count: int, image_shape: tuple[int, ...]) -> None:
        height, width, channels = image_shape
        self.per_side = max(1, math.ceil(math.sqrt(count)))
        self.tile = min(max(height, width), SPRITE_MAX_SIDE // self.per_side)
        scale = self.tile / max(height, width)
        self._height = max(1, round(height * scale))
        self._width = max(1, round(width * scale))
        # Nearest-neighbour sampling: which source row and column each pixel uses.
        self._rows = np.arange(self._height) * height // self._height
        self._columns = np.arange(self._width) * width // self._width
        side = self.per_side * self.tile
        self._sheet = np.zeros((side, side, channels), dtype=np.uint8)
        self._mode = _SPRITE_MODES[channels]
        self.filled = 0

    @staticmethod
    def supports(image_shape: tuple[int, ...]) -> bool:
        """Images of (height, width, 1, 3 or 4 channels) can make a sprite."""
        return len(image_shape) == 3 and image_shape[2] in _SPRITE_MODES

    @property
    def side(self) -> int:
        return self.per_side * self.tile

    def add(self, images: np.ndarray) -> None:
        """Place a batch of float images (values in [0, 1], else rescaled)."""
        pixels = to_pixels(images)[:, self._rows][:, :, self._columns]
        top = (self.tile - self._height) // 2
        left = (self.tile - self._width) // 2
        for image in pixels:
            row, column = divmod(self.filled, self.per_side)
            y, x = row * self.tile + top, column * self.tile + left
            self._sheet[y : y + self._height, x : x + self._width] = image
            self.filled += 1

    def save(self, path: Path) -> None:
        from PIL import Image

        sheet = self._sheet[..., 0] if self._mode == "L" else self._sheet
        Image.fromarray(sheet, mode=self._mode).save(path, format="PNG")


def to_pixels(images: np.ndarray) -> np.ndarray:
    """uint8 pixels: images in [0, 1] as they are, others stretched to fit."""
    axes = tuple(range(1, images.ndim))
    low = images.min(axis=axes, keepdims=True)
    high = images.max(axis=axes, keepdims=True)
    in_range = (low >= 0) & (high <= 1)
    span = np.where(high > low, high - low, 1)
    scaled = np.where(in_range, images, (images - low) / span)
    return np.rint(scaled * 255).astype(np.uint8)


def clean_cell(value: str) -> str:
    """A metadata cell: tabs and line breaks would break the TSV's rows."""
    return " ".join(str(value).split()) or "-"


def write_metadata(path: Path, columns: Mapping[str, Sequence[str]]) -> None:
    """Write metadata.tsv: a header row (needed for more than one column)."""
    names = list(columns)
    rows = zip(*(columns[name] for name in names), strict=True)
    lines = ["\t".join(clean_cell(name) for name in names)]
    lines.extend("\t".join(clean_cell(cell) for cell in row) for row in rows)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_config(
    path: Path,
    tensor_name: str,
    tensor_file: str,
    shape: tuple[int, int],
    metadata_file: str,
    sprite: tuple[str, int] | None,
) -> None:
    """Write projector_config.pbtxt; asset paths are relative to its folder."""
    from google.protobuf import text_format
    from tensorboard.plugins.projector.projector_config_pb2 import ProjectorConfig

    config = ProjectorConfig()
    embedding = config.embeddings.add()
    embedding.tensor_name = tensor_name
    embedding.tensor_path = tensor_file
    embedding.tensor_shape.extend(shape)
    embedding.metadata_path = metadata_file
    if sprite is not None:
        embedding.sprite.image_path = sprite[0]
        embedding.sprite.single_image_dim.extend([sprite[1], sprite[1]])
    path.write_text(text_format.MessageToString(config), encoding="utf-8")


def write_vectors(
    staging: Path,
    paths: RunPaths,
    batches: Iterable[tuple[np.ndarray, np.ndarray, np.ndarray]],
    sprite: SpriteSheet | None,
) -> tuple[Path, tuple[int, int], np.ndarray]:
    """Stream the batches' vectors to disk and their images into the sprite.

    Returns the tensor file, its shape and the predicted labels.
    """
    path = staging / paths.embedding_vectors.name
    predicted, rows, dimension = [], 0, 0
    with open(path, "wb") as stream:
        for images, vectors, predictions in batches:
            stream.write(np.ascontiguousarray(vectors, dtype=np.float32).tobytes())
            rows, dimension = rows + len(vectors), vectors.shape[1]
            predicted.append(predictions)
            if sprite is not None:
                sprite.add(images)
    if binary_reads_as_text(path):
        logger.info("the vectors start with zeros only: writing them as TSV")
        text_path = staging / paths.embedding_vectors_text.name
        binary_to_text(path, text_path, (rows, dimension))
        path.unlink()
        path = text_path
    return path, (rows, dimension), np.concatenate(predicted)


def write_export(
    staging: Path,
    paths: RunPaths,
    batches: Iterable[tuple[np.ndarray, np.ndarray, np.ndarray]],
    image_shape: tuple[int, ...],
    labels: np.ndarray,
    subsets: Sequence[str],
    class_names: Sequence[str],
    tensor_name: str,
) -> dict[str, Any]:
    """Write the vectors, metadata, sprite and config into `staging`.

    `batches` yields (images, vectors, predicted labels) for `labels` in order.
    Returns the facts about the export that go into its record.
    """
    sprite = None
    if SpriteSheet.supports(image_shape):
        sprite = SpriteSheet(len(labels), image_shape)
    vectors, shape, predicted = write_vectors(staging, paths, batches, sprite)

    def name(label: int) -> str:
        return class_names[label] if 0 <= label < len(class_names) else str(label)

    columns = {
        "label": [str(label) for label in labels],
        "class": [name(label) for label in labels],
        "predicted": [name(label) for label in predicted],
        "correct": np.where(labels == predicted, "yes", "no").tolist(),
        "subset": list(subsets),
    }
    write_metadata(staging / paths.embedding_metadata.name, columns)
    if sprite is not None:
        sprite.save(staging / paths.embedding_sprite.name)
    write_config(
        staging / paths.projector_config.name,
        tensor_name,
        vectors.name,
        shape,
        paths.embedding_metadata.name,
        (paths.embedding_sprite.name, sprite.tile) if sprite else None,
    )
    return {
        "tensor_name": tensor_name,
        "count": shape[0],
        "dimension": shape[1],
        "vectors": vectors.name,
        "vector_format": "tsv" if vectors.suffix == ".tsv" else "float32",
        "metadata": paths.embedding_metadata.name,
        "metadata_columns": list(columns),
        "sprite": paths.embedding_sprite.name if sprite else None,
        "sprite_tile": sprite.tile if sprite else None,
        "sprite_side": sprite.side if sprite else None,
        "accuracy": round(float(np.mean(labels == predicted)), 6),
    }


def write_event_file(folder: Path, record: Mapping[str, Any]) -> None:
    """A small event file, so TensorBoard lists the folder as a run.

    The Projector offers only folders TensorBoard knows as runs (those that
    hold event files); this one also says in the Text tab what was exported.
    """
    import tensorflow as tf

    text = (
        f"Projector export of layer `{record['layer']}` of run "
        f"`{record['run']}`: {record['count']} {record['split']} images, "
        f"{record['dimension']} dimensions, from `{record['checkpoint']}` "
        f"(epoch {record.get('checkpoint_epoch')}), {record['created_at']}."
    )
    writer = tf.summary.create_file_writer(str(folder))
    with writer.as_default():
        tf.summary.text("embeddings", text, step=0)
    writer.close()

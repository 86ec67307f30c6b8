"""`kerasjobs embed` and `kerasjobs tensorboard`, checked through real TensorBoard."""

from __future__ import annotations

import io
import math
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sklearn.neighbors import KNeighborsClassifier

from kerasjobs.data import load_dataset
from kerasjobs.layout import Layout
from kerasjobs.projector import SPRITE_MAX_SIDE, SpriteSheet
from tests.conftest import invoke, our_lines, read_json, run_kerasjobs
from tests.tbserver import TensorBoardServer, serve

PROJECTOR = "/data/plugin/projector"
DIGITS_RUN = "digits/logs/projector"
CUSTOM_RUN = "custom/logs/projector"


def build_two_path_model(input_shape: tuple[int, ...], num_classes: int):
    """A user's model with no "embedding" layer, and a branch of dead units.

    The bias far below zero keeps every ReLU of "dead" at 0 (and its gradient
    too), so that layer's vectors are all zeros: a real failure mode.
    """
    import keras

    inputs = keras.Input(shape=input_shape, name="image")
    flat = keras.layers.Flatten(name="flatten")(inputs)
    features = keras.layers.Dense(32, activation="relu", name="features")(flat)
    dead = keras.layers.Dense(
        32,
        activation="relu",
        bias_initializer=keras.initializers.Constant(-1e4),
        name="dead",
    )(flat)
    mixed = keras.layers.Add(name="mixed")([features, dead])
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="classifier")(
        mixed
    )
    return keras.Model(inputs, outputs)


def embed_ok(*args: str) -> None:
    result = invoke("embed", *args)
    assert result.exit_code == 0, result.output


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file below `folder` and its bytes, to prove nothing changed."""
    return {
        str(path.relative_to(folder)): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def exported_files_exist(export: Path) -> bool:
    """Whether every file the Projector config names is there."""
    config = (export / "projector_config.pbtxt").read_text()
    names = re.findall(r'(?:path|image_path): "([^"]+)"', config)
    return bool(names) and all((export / name).is_file() for name in names)


def read_metadata(text: str) -> tuple[list[str], list[list[str]]]:
    header, *rows = text.rstrip("\n").split("\n")
    return header.split("\t"), [row.split("\t") for row in rows]


@pytest.fixture(scope="module")
def root(trained_root: Path, tmp_path_factory) -> Path:
    """A root with two embedded runs: the digits MLP and a user's model."""
    root = tmp_path_factory.mktemp("embed")
    shutil.copytree(trained_root / "digits", root / "digits")
    embed_ok("--root", str(root), "--run", "digits")

    result = invoke(
        "train",
        "--root",
        str(root),
        "--run-name",
        "custom",
        "--model",
        f"{__name__}:build_two_path_model",
        "--epochs",
        "2",
        "--histogram-freq",
        "0",
    )
    assert result.exit_code == 0, result.output
    embed_ok("--root", str(root), "--run", "custom", "--layer", "dead")
    return root


@pytest.fixture(scope="module")
def board(root: Path):
    with serve(root) as server:
        server.wait_for(
            lambda: server.get_json(f"{PROJECTOR}/runs"),
            lambda runs: {DIGITS_RUN, CUSTOM_RUN} <= set(runs),
        )
        yield server


@pytest.fixture(scope="module")
def digits(root: Path):
    """The digits data as the run saw it (its config's split and seed)."""
    config = read_json(Layout(root).run("digits").config)
    return load_dataset(
        config["dataset"],
        Layout(root).datasets,
        config["validation_split"],
        config["seed"],
    )


def test_projector_lists_only_the_exports(board: TensorBoardServer) -> None:
    runs = board.get_json(f"{PROJECTOR}/runs")
    assert sorted(runs) == [CUSTOM_RUN, DIGITS_RUN]


def test_tensor_served_is_the_vectors_written(
    board: TensorBoardServer, root: Path, digits
) -> None:
    export = Layout(root).run("digits")
    record = read_json(export.embedding_record)
    count, dimension = record["count"], record["dimension"]
    assert (count, dimension) == (len(digits.y_test), 128)
    assert record["layer"] == "embedding" and record["split"] == "test"

    info = board.get_json(f"{PROJECTOR}/info?run={DIGITS_RUN}")
    assert info["embeddings"][0]["tensorShape"] == [count, dimension]
    served = board.get(
        f"{PROJECTOR}/tensor?run={DIGITS_RUN}&name=embedding&num_rows={count}"
    )
    tensor = np.frombuffer(served, dtype=np.float32).reshape(count, dimension)
    written = np.fromfile(export.embedding_vectors, dtype=np.float32)
    np.testing.assert_array_equal(tensor, written.reshape(count, dimension))
    assert tensor.std() > 0


def test_metadata_has_one_row_per_point_with_its_label(
    board: TensorBoardServer, digits
) -> None:
    text = board.get(
        f"{PROJECTOR}/metadata?run={DIGITS_RUN}&name=embedding&num_rows=100000"
    ).decode()
    header, rows = read_metadata(text)
    assert header == ["label", "class", "predicted", "correct", "subset"]
    assert len(rows) == len(digits.y_test)
    assert [int(row[0]) for row in rows] == digits.y_test.tolist()
    assert {row[1] for row in rows} == {str(label) for label in range(10)}
    correct = [row[3] == "yes" for row in rows]
    assert correct == [row[0] == row[2] for row in rows]
    assert sum(correct) / len(rows) > 0.85


def test_sprite_tiles_are_the_images_row_major(
    board: TensorBoardServer, digits
) -> None:
    png = board.get(f"{PROJECTOR}/sprite_image?run={DIGITS_RUN}&name=embedding")
    sprite = np.asarray(Image.open(io.BytesIO(png)))
    per_side = math.ceil(math.sqrt(len(digits.y_test)))
    assert sprite.shape == (per_side * 8, per_side * 8)

    info = board.get_json(f"{PROJECTOR}/info?run={DIGITS_RUN}")
    assert info["embeddings"][0]["sprite"]["singleImageDim"] == [8, 8]
    for index in (0, 1, per_side, len(digits.y_test) - 1):
        row, column = divmod(index, per_side)
        tile = sprite[row * 8 : row * 8 + 8, column * 8 : column * 8 + 8]
        expected = np.rint(digits.x_test[index, :, :, 0] * 255)
        np.testing.assert_array_equal(tile, expected)


@pytest.mark.parametrize(
    ("count", "image_shape", "tile"),
    [(60_000, (28, 28, 1), 28), (100_000, (28, 28, 1), 25), (10, (64, 32, 3), 64)],
)
def test_sprite_stays_square_and_within_the_projector_limit(
    count: int, image_shape: tuple[int, int, int], tile: int
) -> None:
    sheet = SpriteSheet(count, image_shape)
    assert sheet.tile == tile
    assert sheet.per_side**2 >= count
    assert sheet.side == sheet.per_side * tile <= SPRITE_MAX_SIDE


def test_training_scalars_and_graph_sit_beside_the_export(
    board: TensorBoardServer,
) -> None:
    tags = board.get_json("/data/plugin/scalars/tags")
    assert {"epoch_accuracy", "epoch_learning_rate"} <= set(tags["digits/logs/train"])
    assert "epoch_accuracy" in tags["digits/logs/validation"]
    graphs = board.get_json("/data/plugin/graphs/info")
    assert graphs["digits/logs/train"]["tags"]


def test_nearest_neighbours_in_the_export_share_labels(root: Path) -> None:
    export = Layout(root).run("digits")
    record = read_json(export.embedding_record)
    vectors = np.fromfile(export.embedding_vectors, dtype=np.float32).reshape(
        record["count"], record["dimension"]
    )
    _, rows = read_metadata(export.embedding_metadata.read_text())
    labels = np.array([int(row[0]) for row in rows])

    # Neighbours come from the first two thirds; the rest are held out.
    cut = 2 * len(labels) // 3
    knn = KNeighborsClassifier(n_neighbors=5).fit(vectors[:cut], labels[:cut])
    assert knn.score(vectors[cut:], labels[cut:]) >= 0.9


def test_dead_layer_of_zeros_still_opens_in_the_projector(
    board: TensorBoardServer, root: Path
) -> None:
    # TensorBoard would read a binary file of zeros as text and fail, so such
    # vectors are written as TSV.
    export = Layout(root).run("custom")
    assert read_json(export.embedding_record)["vector_format"] == "tsv"
    assert exported_files_exist(export.projector)
    count = len(export.embedding_metadata.read_text().splitlines()) - 1
    served = board.get(f"{PROJECTOR}/tensor?run={CUSTOM_RUN}&name=dead")
    tensor = np.frombuffer(served, dtype=np.float32)
    assert tensor.shape == (count * 32,) and not tensor.any()


def test_default_layer_of_a_user_model_is_the_one_before_the_classifier(
    root: Path, tmp_path: Path
) -> None:
    shutil.copytree(root / "custom", tmp_path / "custom")
    embed_ok("--root", str(tmp_path), "--run", "custom", "--limit", "40")
    record = read_json(Layout(tmp_path).run("custom").embedding_record)
    assert (record["layer"], record["count"], record["dimension"]) == ("mixed", 40, 32)


def test_reexport_replaces_the_old_export_whole(root: Path, tmp_path: Path) -> None:
    shutil.copytree(root / "digits", tmp_path / "digits")
    paths = Layout(tmp_path).run("digits")
    embed_ok(
        "--root", str(tmp_path), "--run", "digits", "--layer", "dense",
        "--split", "train", "--limit", "50",
    )  # fmt: skip
    record = read_json(paths.embedding_record)
    assert (record["layer"], record["count"], record["dimension"]) == ("dense", 50, 256)
    assert paths.embedding_vectors.stat().st_size == 50 * 256 * 4
    _, rows = read_metadata(paths.embedding_metadata.read_text())
    assert len(rows) == 50 and {row[4] for row in rows} == {"train"}
    assert exported_files_exist(paths.projector)
    assert len(list(paths.projector.glob("events.out.tfevents.*"))) == 1
    assert paths.projector_scratch_folders() == []


def expect_refusal(args: list[str], code: int, message: str, root: Path) -> None:
    """A real process exits with `code`, one error line, and writes nothing."""
    before = snapshot(root)
    result = run_kerasjobs("embed", "--root", str(root), *args)
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr
    last_line = our_lines(result.stderr)[-1]
    assert last_line.startswith("kerasjobs: error: ")
    assert re.search(message, last_line), last_line
    assert snapshot(root) == before


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--run", "nope"], 2, r"no run 'nope' under .*runs there: .*digits"),
        (["--run", "digits", "--limit", "0"], 2, r"Invalid value for '--limit'"),
        (["--run", "digits", "--limit", "-3"], 2, r"Invalid value for '--limit'"),
        (["--run", "digits", "--split", "val"], 2, r"Invalid value for '--split'"),
    ],
    ids=["unknown-run", "zero-limit", "negative-limit", "unknown-split"],
)
def test_bad_input_is_one_line_and_writes_nothing(
    root: Path, args: list[str], code: int, message: str
) -> None:
    expect_refusal(args, code, message, root)


def test_unknown_layer_lists_the_valid_ones(root: Path) -> None:
    message = r"no layer 'nope': pass --layer with one of image, flatten, .*embedding"
    expect_refusal(["--run", "digits", "--layer", "nope"], 2, message, root)


def test_run_without_checkpoint_is_refused(root: Path, tmp_path: Path) -> None:
    shutil.copytree(root / "digits", tmp_path / "digits")
    shutil.rmtree(tmp_path / "digits" / "logs" / "projector")
    (tmp_path / "digits" / "checkpoints" / "best.keras").unlink()
    message = r"run 'digits' has no checkpoint .*best.keras yet"
    expect_refusal(["--run", "digits"], 1, message, tmp_path)


@pytest.mark.parametrize(
    "stop", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "kill"]
)
def test_stopped_export_leaves_the_old_one_intact(
    root: Path, tmp_path: Path, stop: signal.Signals
) -> None:
    shutil.copytree(root / "digits", tmp_path / "digits")
    paths = Layout(tmp_path).run("digits")
    before = snapshot(paths.projector)

    # One image per batch keeps the export busy long enough to be stopped.
    process = subprocess.Popen(
        [sys.executable, "-m", "kerasjobs", "embed", "--root", str(tmp_path)]
        + ["--run", "digits", "--split", "train", "--batch-size", "1"],
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not paths.projector_scratch_folders() and time.monotonic() < deadline:
        assert process.poll() is None, "the export ended before it could be stopped"
        time.sleep(0.01)
    process.send_signal(stop)
    _, stderr = process.communicate(timeout=60)

    assert snapshot(paths.projector) == before
    assert exported_files_exist(paths.projector)
    if stop == signal.SIGINT:
        # Ctrl-C: one line, exit 130, and the scratch folder is gone.
        assert process.returncode == 130
        assert our_lines(stderr)[-1] == "kerasjobs: aborted"
        assert "Traceback" not in stderr
        assert paths.projector_scratch_folders() == []
    # The next export sweeps what a killed one left (no event file, so
    # TensorBoard never listed it).
    embed_ok("--root", str(tmp_path), "--run", "digits", "--limit", "20")
    assert read_json(paths.embedding_record)["count"] == 20
    assert paths.projector_scratch_folders() == []


def test_tensorboard_job_serves_the_root_until_interrupted(
    root: Path, tmp_path: Path
) -> None:
    log = tmp_path / "stderr.log"
    with open(log, "w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "kerasjobs", "tensorboard", "--root", str(root)]
            + ["--port", "0"],
            stderr=stderr,
        )
    try:
        server = TensorBoardServer("http://unknown")
        pattern = re.compile(r"TensorBoard serves .* at (http://\S+)")
        match = server.wait_for(lambda: pattern.search(log.read_text()), bool)
        server = TensorBoardServer(match.group(1))
        runs = server.wait_for(
            lambda: server.get_json(f"{PROJECTOR}/runs"),
            lambda runs: DIGITS_RUN in runs,
        )
        assert CUSTOM_RUN in runs
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0, log.read_text()

"""Benchmark of the train job: speed against notebook-style fit, roofline, --help.

Everything is measured side by side in one process run, on the same model and
data, so the ratios hold even on a shared, noisy machine.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

EPOCHS = 10


def notebook_fit(dataset, model_name: str) -> dict:
    """What a notebook does: numpy arrays straight into fit, batch size 32."""
    import keras

    from kerasjobs.models import build_model

    keras.utils.set_random_seed(0)
    model = build_model(model_name, dataset.input_shape, dataset.num_classes)
    model.compile(
        optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    epoch_seconds: list[float] = []
    timer = keras.callbacks.LambdaCallback(
        on_epoch_begin=lambda epoch, logs: epoch_seconds.append(time.perf_counter()),
        on_epoch_end=lambda epoch, logs: epoch_seconds.append(
            time.perf_counter() - epoch_seconds.pop()
        ),
    )
    started = time.perf_counter()
    model.fit(
        dataset.x_train,
        dataset.y_train,
        batch_size=32,
        epochs=EPOCHS,
        validation_data=(dataset.x_val, dataset.y_val),
        callbacks=[timer],
        verbose=0,
    )
    seconds = time.perf_counter() - started
    scores = model.evaluate(dataset.x_test, dataset.y_test, verbose=0, return_dict=True)
    return {
        "seconds": seconds,
        "steady_seconds": sum(epoch_seconds[1:]),
        "accuracy": scores["accuracy"],
    }


def kerasjobs_fit(dataset_spec: str, model_name: str, root: Path, **options) -> dict:
    """`kerasjobs train` at its defaults (all callbacks on), for EPOCHS epochs."""
    from kerasjobs.config import TrainConfig
    from kerasjobs.records import read_json
    from kerasjobs.train import run_training

    config = TrainConfig(
        root=root,
        dataset=dataset_spec,
        model=model_name,
        epochs=EPOCHS,
        patience=EPOCHS,
        verbose="line",
        **options,
    )
    result = run_training(config)
    history = (read_json(result.run.state) or {})["history"]
    return {
        "seconds": result.metrics["fit_seconds_this_attempt"],
        "steady_seconds": sum(row["seconds"] for row in history[1:]),
        "accuracy": result.metrics["test_accuracy"],
    }


def forward_flops(model) -> int:
    """Multiply-adds of one sample's forward pass through Dense and Conv2D."""
    import keras

    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.Dense):
            total += 2 * layer.kernel.shape[0] * layer.kernel.shape[1]
        elif isinstance(layer, keras.layers.Conv2D):
            height, width, out_channels = layer.output.shape[1:]
            kernel_h, kernel_w, in_channels, _ = layer.kernel.shape
            total += (
                2 * height * width * kernel_h * kernel_w * in_channels * out_channels
            )
    return int(total)


def matmul_roofline(size: int = 2048, repeats: int = 20) -> float:
    """FLOP/s of one large float32 matmul, the machine's practical peak."""
    import tensorflow as tf

    a = tf.random.normal((size, size))
    b = tf.random.normal((size, size))
    multiply = tf.function(lambda x, y: tf.matmul(x, y))
    multiply(a, b).numpy()
    started = time.perf_counter()
    for _ in range(repeats):
        result = multiply(a, b)
    result.numpy()
    return 2 * size**3 * repeats / (time.perf_counter() - started)


def help_seconds(runs: int = 5) -> float:
    """Best wall time of `kerasjobs --help` in a fresh process."""
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "kerasjobs", "--help"],
            check=True,
            capture_output=True,
        )
        best = min(best, time.perf_counter() - started)
    return best


def synthetic_mnist(folder: Path) -> str:
    """60,000 + 10,000 MNIST-shaped images whose label is drawn in the image."""
    rng = np.random.default_rng(0)
    arrays = {}
    for split, rows in (("train", 60000), ("test", 10000)):
        labels = rng.integers(0, 10, rows)
        images = rng.integers(0, 60, (rows, 28, 28)).astype(np.uint8)
        images[np.arange(rows), 2 * labels + 4, :] = 255
        arrays[f"x_{split}"], arrays[f"y_{split}"] = images, labels
    path = folder / "mnist-shaped.npz"
    np.savez(path, **arrays)
    return str(path)


def main() -> None:
    from kerasjobs.data import load_dataset
    from kerasjobs.models import build_model

    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        cases = [("digits", "digits", "mlp"),
                 ("mnist-shaped", synthetic_mnist(scratch), "mlp")]  # fmt: skip
        peak = matmul_roofline()
        print(f"\n== train: {EPOCHS} epochs, same model and data, side by side ==")
        print(f"roofline (2048x2048 float32 matmul): {peak / 1e9:.1f} GFLOP/s")
        print(
            "samples/s: the whole fit (first epoch's tracing included); steady: "
            "epochs 2 onwards"
        )
        header = (
            f"{'data':<13}{'model':<6}{'how':<22}{'samples/s':>10}{'steady':>9}"
            f"{'test acc':>9}{'speed-up':>9}{'steady':>7}{'roofline':>9}"
        )
        print(header)
        for label, spec, model_name in cases:
            dataset = load_dataset(spec, scratch / "datasets", 0.1, 0)
            samples = len(dataset.y_train) * EPOCHS
            flops = 3 * forward_flops(
                build_model(model_name, dataset.input_shape, dataset.num_classes)
            )
            notebook = notebook_fit(dataset, model_name)
            ours = kerasjobs_fit(spec, model_name, scratch / label)
            for how, measured in (("model.fit(numpy, 32)", notebook),
                                  ("kerasjobs train", ours)):  # fmt: skip
                rate = samples / measured["seconds"]
                steady = samples * (EPOCHS - 1) / EPOCHS / measured["steady_seconds"]
                speedup = notebook["seconds"] / measured["seconds"]
                steady_up = notebook["steady_seconds"] / measured["steady_seconds"]
                print(
                    f"{label:<13}{model_name:<6}{how:<22}{rate:>10,.0f}"
                    f"{steady:>9,.0f}{measured['accuracy']:>9.4f}"
                    f"{speedup:>8.1f}x{steady_up:>6.1f}x{steady * flops / peak:>9.1%}"
                )
        print(f"\n`kerasjobs --help` wall time (best of 5): {help_seconds():.3f} s")


if __name__ == "__main__":
    main()

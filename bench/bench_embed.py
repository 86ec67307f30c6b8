"""Benchmark of the embed job: images/s and peak memory, 10,000 and 60,000 images.

Random MNIST-shaped images (28x28x1, uint8) go into an .npz laid out like
Keras' mnist.npz; the CNN trains one epoch on them so a real run exists; then
each size is embedded in a fresh process, which reports its own peak RSS.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import numpy as np  # noqa: E402

TRAIN_ROWS, TEST_ROWS = 60_000, 10_000
# Each size: which split holds that many images.
SIZES = {10_000: "test", 60_000: "train"}

# Runs in a fresh process per size: import, note RSS, embed, report.
_CHILD = """
import json, resource, sys, time
from pathlib import Path
import tensorflow  # imported before the baseline, as the job always does
from kerasjobs.embed import EmbedConfig, run_embedding

def rss_mb():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024

baseline = rss_mb()
config = EmbedConfig(root=Path(sys.argv[1]), run="bench", split=sys.argv[2])
started = time.perf_counter()
record = run_embedding(config).record
seconds = time.perf_counter() - started
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": seconds, "baseline_mb": baseline, "peak_mb": peak,
                  "export_seconds": record["seconds"], "count": record["count"],
                  "dimension": record["dimension"], "sprite": record["sprite_side"]}))
"""


def make_dataset(folder: Path) -> Path:
    """Random uint8 images and labels in the Keras mnist.npz layout."""
    rng = np.random.default_rng(0)
    path = folder / "random-mnist.npz"
    np.savez(
        path,
        x_train=rng.integers(0, 256, (TRAIN_ROWS, 28, 28), dtype=np.uint8),
        y_train=rng.integers(0, 10, TRAIN_ROWS, dtype=np.uint8),
        x_test=rng.integers(0, 256, (TEST_ROWS, 28, 28), dtype=np.uint8),
        y_test=rng.integers(0, 10, TEST_ROWS, dtype=np.uint8),
    )
    return path


def kerasjobs(*args: str) -> None:
    command = [sys.executable, "-m", "kerasjobs", "--log-level", "warning", *args]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode:
        sys.exit(f"kerasjobs {args[0]} failed:\n{result.stderr}")


def measure(root: Path, split: str) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", _CHILD, str(root), split],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-embed-") as folder:
        root = Path(folder) / "root"
        dataset = make_dataset(Path(folder))
        started = time.perf_counter()
        kerasjobs(
            "train", "--root", str(root), "--run-name", "bench",
            "--dataset", str(dataset), "--model", "cnn", "--epochs", "1",
            "--histogram-freq", "0", "--progress", "line",
        )  # fmt: skip
        print(f"trained the CNN for 1 epoch in {time.perf_counter() - started:.0f} s")

        print(
            f"{'images':>8} {'split':>6} {'seconds':>8} {'images/s':>9} "
            f"{'peak RSS MB':>12} {'after import MB':>16} {'sprite px':>10}"
        )
        for size, split in SIZES.items():
            row = measure(root, split)
            assert row["count"] == size, row
            print(
                f"{size:>8} {split:>6} {row['seconds']:>8.1f} "
                f"{size / row['seconds']:>9.0f} {row['peak_mb']:>12.0f} "
                f"{row['baseline_mb']:>16.0f} {row['sprite']:>10}"
            )
        print(
            "seconds: the whole job (data, model, inference, export) after "
            "importing TensorFlow; peak RSS: the process's high-water mark."
        )


if __name__ == "__main__":
    main()

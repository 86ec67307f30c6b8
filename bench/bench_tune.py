"""Benchmark of the tune job: trials per minute with one and two workers, and
how soon the chief exits after the last trial.

Each process (chief and workers) runs TensorFlow on one thread, so two
workers can use two cores. Times come from the chief's own record of when
each trial started and how long it ran, so process start-up is left out.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MAX_TRIALS = 8
ONE_THREAD = {
    "TF_NUM_INTRAOP_THREADS": "1",
    "TF_NUM_INTEROP_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "TF_CPP_MIN_LOG_LEVEL": "3",
    "CUDA_VISIBLE_DEVICES": "",
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run_search(workers: int, folder: Path) -> dict:
    """A chief and `workers` workers; returns trials/min and the exit latency."""
    port = free_port()
    common = [
        sys.executable, "-m", "kerasjobs", "tune", "--root", str(folder),
        "--project", f"bench-{workers}", "--max-trials", str(MAX_TRIALS),
        "--epochs", "3", "--progress", "line", "--oracle", f"127.0.0.1:{port}",
    ]  # fmt: skip
    env = {**os.environ, **ONE_THREAD}
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "env": env}
    chief = subprocess.Popen([*common, "--role", "chief"], **quiet)
    others = [
        subprocess.Popen(
            [*common, "--role", "worker", "--worker-id", f"w-{i}"], **quiet
        )
        for i in range(workers)
    ]
    chief.wait(timeout=600)
    chief_exit = time.time()
    for process in others:
        process.wait(timeout=60)
    if chief.returncode or any(process.returncode for process in others):
        raise SystemExit(f"the search with {workers} workers failed")

    state = json.loads(
        (folder / "tuning" / f"bench-{workers}" / "oracle.json").read_text()
    )
    timing = state["kerasjobs"]["timing"].values()
    first_start = min(entry["started"] for entry in timing)
    last_end = max(entry["started"] + entry["seconds"] for entry in timing)
    return {
        "trials_per_minute": MAX_TRIALS / (last_end - first_start) * 60,
        "exit_latency": chief_exit - last_end,
    }


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        one = run_search(1, Path(folder))
        two = run_search(2, Path(folder))
    print(f"tune: {MAX_TRIALS} trials of 3 epochs on digits, one thread per process")
    print(f"  1 worker : {one['trials_per_minute']:6.1f} trials/min")
    print(
        f"  2 workers: {two['trials_per_minute']:6.1f} trials/min "
        f"({two['trials_per_minute'] / one['trials_per_minute']:.2f}x, aim >= 1.8x)"
    )
    latency = max(one["exit_latency"], two["exit_latency"])
    print(f"  chief exits {latency:.1f} s after the last trial ends (aim < 5 s)")


if __name__ == "__main__":
    main()

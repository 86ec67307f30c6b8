"""kerasjobs tune: real searches, alone and as a chief with workers over gRPC."""

from __future__ import annotations

import csv
import json
import os
import signal
import socket
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from tests.conftest import our_lines, run_kerasjobs
from tests.tbserver import serve

# One thread per process: several TensorFlow processes share two cores here.
THREADS = {
    "TF_NUM_INTRAOP_THREADS": "1",
    "TF_NUM_INTEROP_THREADS": "1",
    "OMP_NUM_THREADS": "1",
}
FAST = ["--epochs", "2", "--progress", "line", "--connect-timeout", "60"]
# Every process of a test must be done by then, or the test fails.
DEADLINE = 150


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def nan_model(hp):
    """A hypermodel whose loss is NaN from the first step (for failure tests)."""
    import keras

    inputs = keras.Input(shape=(8, 8, 1))
    x = keras.layers.Flatten()(inputs)
    x = keras.layers.Lambda(lambda t: t * float("nan"))(x)
    outputs = keras.layers.Dense(10, activation="softmax")(x)
    return keras.Model(inputs, outputs)


def exploding_model(hp):
    """A hypermodel that builds but raises as soon as it trains."""
    import keras

    class Explode(keras.layers.Layer):
        def call(self, inputs, training=None):
            if training:
                raise ValueError("this layer refuses to train")
            return inputs

    inputs = keras.Input(shape=(8, 8, 1))
    x = Explode()(keras.layers.Flatten()(inputs))
    return keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(x))


class Job:
    """One `kerasjobs tune` process with its output in a log file."""

    def __init__(self, name: str, args: list[str], folder: Path) -> None:
        self.name = name
        self.log = folder / f"{name}.log"
        with open(self.log, "ab") as stream:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "kerasjobs", "tune", *args],
                stdout=stream,
                stderr=subprocess.STDOUT,
                env={**os.environ, **THREADS},
            )

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait(self, deadline: float) -> int:
        try:
            return self.process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            self.process.kill()
            pytest.fail(
                f"{self.name} did not exit in time; log:\n{self.text()[-3000:]}"
            )

    def kill(self, signum: int = signal.SIGKILL) -> None:
        self.process.send_signal(signum)
        self.process.wait(timeout=30)


def wait_for_log(job: Job, text: str, timeout: float = 90) -> str:
    """Wait until `text` appears in the job's log; return the matching line."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in job.text().splitlines():
            if text in line:
                return line
        assert job.process.poll() is None, f"{job.name} exited:\n{job.text()}"
        time.sleep(0.1)
    pytest.fail(f"{job.name} never logged {text!r}:\n{job.text()[-3000:]}")


class Cluster:
    """A chief and workers of one search on 127.0.0.1, on a free port each."""

    def __init__(self, folder: Path, options: list[str]) -> None:
        self.folder = folder
        self.root = folder / "root"
        self.port = free_port()
        self.options = ["--root", str(self.root), "--project", "p", *FAST, *options]
        self.jobs: list[Job] = []

    def start(self, role: str, worker_id: str | None = None, label: str = "") -> Job:
        args = [*self.options, "--role", role, "--oracle", f"127.0.0.1:{self.port}"]
        if worker_id:
            args += ["--worker-id", worker_id]
        job = Job(label or worker_id or role, args, self.folder)
        self.jobs.append(job)
        return job

    @property
    def project(self) -> Path:
        return self.root / "tuning" / "p"

    def wait_all(self, timeout: float = DEADLINE) -> dict[str, int]:
        deadline = time.monotonic() + timeout
        return {job.name: job.wait(deadline) for job in self.jobs}

    def stop(self) -> None:
        for job in self.jobs:
            if job.process.poll() is None:
                job.process.kill()
                job.process.wait(timeout=30)

    def logs(self) -> str:
        return "\n".join(f"--- {job.name}\n{job.text()[-2000:]}" for job in self.jobs)


@pytest.fixture
def cluster(tmp_path):
    clusters: list[Cluster] = []

    def make(*options: str) -> Cluster:
        clusters.append(Cluster(tmp_path, list(options)))
        return clusters[-1]

    yield make
    for made in clusters:
        made.stop()


def read_trials(project: Path) -> list[dict]:
    with open(project / "trials.csv", newline="") as stream:
        return list(csv.DictReader(stream))


def oracle_trials(project: Path) -> dict[str, dict]:
    return {
        path.parent.name.removeprefix("trial_"): json.loads(path.read_text())
        for path in project.glob("trial_*/trial.json")
    }


def started_trials(*jobs: Job) -> list[str]:
    """Trial ids that workers started, one entry per start."""
    marker = "trial "
    ids = []
    for job in jobs:
        for line in job.text().splitlines():
            if "started here" in line:
                ids.append(line.split(marker, 1)[1].split()[0])
    return ids


def assert_complete(project: Path, max_trials: int) -> list[dict]:
    """All result files exist, and every trial completed."""
    rows = read_trials(project)
    assert [row["status"] for row in rows] == ["COMPLETED"] * max_trials
    assert (project / "best_hyperparameters.json").exists()
    with zipfile.ZipFile(project / "best_model.keras") as archive:
        assert "config.json" in archive.namelist()
    assert json.loads((project / "search.json").read_text())["state"] == "finished"
    return rows


# Single process.


@pytest.fixture(scope="module")
def standalone(tmp_path_factory) -> Path:
    """A finished three-trial search in one process; returns its project."""
    root = tmp_path_factory.mktemp("standalone")
    result = run_kerasjobs(
        "tune", "--root", str(root), "--project", "solo", "--max-trials", "3", *FAST,
        env=THREADS, timeout=DEADLINE,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "search finished: best val_accuracy" in result.stdout
    return root / "tuning" / "solo"


def test_standalone_results_agree_with_oracle_state(standalone):
    rows = read_trials(standalone)
    state = oracle_trials(standalone)
    assert len(rows) == 3 and set(state) == {row["trial_id"] for row in rows}
    for row in rows:
        trial = state[row["trial_id"]]
        assert row["status"] == trial["status"] == "COMPLETED"
        assert float(row["score"]) == pytest.approx(trial["score"])
        assert json.loads(row["hyperparameters"]) == trial["hyperparameters"]["values"]
        assert float(row["seconds"]) > 0

    best = json.loads((standalone / "best_hyperparameters.json").read_text())
    top = max(state.values(), key=lambda trial: trial["score"])
    assert best["trial_id"] == top["trial_id"]
    assert best["score"] == pytest.approx(top["score"])
    assert set(best["hyperparameters"]) == {
        "units",
        "depth",
        "dropout",
        "learning_rate",
    }
    with zipfile.ZipFile(standalone / "best_model.keras") as archive:
        assert "model.weights.h5" in archive.namelist()


def test_hparams_dashboard_lists_hyperparameters_and_metrics(standalone):
    with serve(standalone / "logs") as board:
        experiment = board.wait_for(
            lambda: board.post_json(
                "/data/plugin/hparams/experiment", {"experimentName": ""}
            ),
            lambda answer: answer.get("hparamInfos") and answer.get("metricInfos"),
        )
    names = {info["name"] for info in experiment["hparamInfos"]}
    assert {"units", "depth", "dropout", "learning_rate"} <= names
    tags = {info["name"]["tag"] for info in experiment["metricInfos"]}
    assert "epoch_accuracy" in tags


def test_sigterm_saves_and_a_rerun_resumes(tmp_path):
    root = tmp_path / "root"
    args = ["--root", str(root), "--project", "t", "--max-trials", "3", *FAST]
    job = Job("first", args, tmp_path)
    wait_for_log(job, "trial 1 started")
    stopped = time.monotonic()
    job.process.send_signal(signal.SIGTERM)
    code = job.wait(stopped + 30)
    assert code == 143, job.text()[-2000:]
    assert "stopped by SIGTERM" in job.text()

    rerun = run_kerasjobs("tune", *args, env=THREADS, timeout=DEADLINE)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    rows = assert_complete(root / "tuning" / "t", 3)
    # Trial 0 had finished before SIGTERM: it is never run again.
    assert rows[0]["runs"] == "1"


def test_failing_trials_end_a_standalone_search_with_one_error(tmp_path):
    result = run_kerasjobs(
        "tune", "--root", str(tmp_path), "--max-trials", "5",
        "--hypermodel", "tests.test_tune:exploding_model",
        "--max-retries-per-trial", "1", "--max-consecutive-failed-trials", "2",
        *FAST, env=THREADS, timeout=DEADLINE,
    )  # fmt: skip
    assert result.returncode == 1
    last = our_lines(result.stderr)[-1]
    assert last.startswith("kerasjobs: error: the search failed: 2 trials failed")
    assert "this layer refuses to train" in last
    assert "Traceback" not in result.stderr


# Chief and workers.


def test_chief_and_two_workers_one_started_before_the_chief(cluster):
    search = cluster("--max-trials", "4")
    early = search.start("worker", "worker-0")
    wait_for_log(early, "tuning project p as worker")
    time.sleep(2)
    chief = search.start("chief")
    late = search.start("worker", "worker-1")

    codes = search.wait_all()
    assert codes == {"worker-0": 0, "chief": 0, "worker-1": 0}, search.logs()
    rows = assert_complete(search.project, 4)
    assert sorted(started_trials(early, late)) == [row["trial_id"] for row in rows]
    assert started_trials(early), "the worker started first ran no trial"
    assert "search finished: best val_accuracy" in chief.text()


def test_worker_without_chief_gives_up_after_connect_timeout(tmp_path):
    port = free_port()
    started = time.monotonic()
    result = run_kerasjobs(
        "tune", "--root", str(tmp_path), "--role", "worker", "--worker-id", "w-1",
        "--oracle", f"127.0.0.1:{port}", *FAST, "--connect-timeout", "3",
        env=THREADS, timeout=DEADLINE,
    )  # fmt: skip
    assert result.returncode == 1
    assert f"the chief at 127.0.0.1:{port} did not answer" in result.stderr
    assert time.monotonic() - started < 60


def test_worker_killed_mid_trial_and_restarted_takes_its_trial_back(cluster):
    search = cluster("--max-trials", "3", "--trial-timeout", "30")
    chief = search.start("chief")
    steady = search.start("worker", "worker-0")
    victim = search.start("worker", "worker-1")
    line = wait_for_log(victim, "started here")
    victim.kill()
    trial_id = line.split("trial ", 1)[1].split()[0]

    again = search.start("worker", "worker-1", label="worker-1-again")
    for job in (chief, steady, again):
        assert job.wait(time.monotonic() + DEADLINE) == 0, search.logs()
    assert_complete(search.project, 3)
    assert trial_id in started_trials(again), search.logs()


def test_worker_killed_for_good_its_trial_goes_to_another(cluster):
    search = cluster("--max-trials", "3", "--trial-timeout", "5")
    chief = search.start("chief")
    steady = search.start("worker", "worker-0")
    victim = search.start("worker", "worker-1")
    line = wait_for_log(victim, "started here")
    victim.kill()
    trial_id = line.split("trial ", 1)[1].split()[0]

    for job in (chief, steady):
        assert job.wait(time.monotonic() + DEADLINE) == 0, search.logs()
    assert_complete(search.project, 3)
    assert trial_id in started_trials(steady), search.logs()
    assert f"no news from worker-1 on trial {trial_id}" in chief.text()


def test_chief_killed_and_restarted_runs_no_finished_trial_twice(cluster):
    search = cluster("--max-trials", "4", "--trial-timeout", "30")
    chief = search.start("chief")
    workers = [search.start("worker", f"worker-{index}") for index in range(2)]
    wait_for_log(chief, "ended COMPLETED")
    chief.kill()
    time.sleep(1)

    search.start("chief", label="chief-again")
    for job in [*workers, search.jobs[-1]]:
        assert job.wait(time.monotonic() + DEADLINE) == 0, search.logs()
    rows = assert_complete(search.project, 4)
    assert [row["runs"] for row in rows] == ["1"] * 4
    started = started_trials(*workers)
    assert sorted(started) == sorted(set(started)), f"a trial ran twice: {started}"


def test_always_failing_model_stops_chief_and_workers_with_an_error(cluster):
    search = cluster(
        "--max-trials", "6", "--hypermodel", "tests.test_tune:nan_model",
        "--max-retries-per-trial", "0", "--max-consecutive-failed-trials", "2",
    )  # fmt: skip
    search.start("chief")
    search.start("worker", "worker-0")
    search.start("worker", "worker-1")

    codes = search.wait_all(timeout=120)
    assert all(code != 0 for code in codes.values()), search.logs()
    for job in search.jobs:
        last = our_lines(job.text())[-1]
        assert "the search failed: " in last and "the loss became nan" in last, last
    record = json.loads((search.project / "search.json").read_text())
    assert record["state"] == "failed"

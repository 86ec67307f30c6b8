"""The Kubernetes manifests: they render, validate, agree, and their jobs run.

The last tests run each Job of the rendered local overlay as local processes,
from the manifest alone: the image's ENTRYPOINT `kerasjobs` becomes
`python -m kerasjobs`, the container's args and env are used as written, the
claim's mount path becomes a temporary folder, Service names and 0.0.0.0
become 127.0.0.1, Service ports become free ports, and each completion of an
Indexed Job gets its JOB_COMPLETION_INDEX. Only the values in OVERRIDES
change, to keep the runs small, and each must replace a value the manifest
sets.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import click
import kubernetes_validate
import numpy as np
import pytest
import yaml

from kerasjobs.layout import Layout

REPOSITORY = Path(__file__).resolve().parent.parent
IMAGE_RECIPE = (REPOSITORY / "docker" / "Dockerfile").read_text()
OVERLAYS = ("gpu", "local")
# The releases `make k8s-check` validates for (K8S_VERSIONS in mk/k8s.mk).
KUBERNETES_VERSIONS = ("1.35.0", "1.36.0", "1.37.0")
GPU_JOBS = ("kerasjobs-train", "kerasjobs-embed", "kerasjobs-tune-workers")
TUNE_SEARCH_EXCEPTIONS = ("ROLE", "ORACLE", "WORKER_ID", "CONNECT_TIMEOUT")
SMALL_TUNE = {"KERASJOBS_TUNE_MAX_TRIALS": "2", "KERASJOBS_TUNE_EPOCHS": "1"}
OVERRIDES = {
    "kerasjobs-train": {"KERASJOBS_TRAIN_EPOCHS": "2"},
    "kerasjobs-embed": {"KERASJOBS_EMBED_LIMIT": "64"},
    "kerasjobs-tune-chief": SMALL_TUNE,
    "kerasjobs-tune-workers": SMALL_TUNE,
}


def render(overlay: str) -> list[dict]:
    """The objects `kubectl kustomize` makes of one overlay."""
    kubectl = Path(sys.executable).parent / "kubectl"
    result = subprocess.run(
        [str(kubectl), "kustomize", str(REPOSITORY / "k8s" / "overlays" / overlay)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return [item for item in yaml.safe_load_all(result.stdout) if item]


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[dict]]:
    return {overlay: render(overlay) for overlay in OVERLAYS}


def named(objects: list[dict], kind: str) -> dict[str, dict]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def workloads(objects: list[dict]) -> dict[str, dict]:
    """Jobs and Deployments by name."""
    return {**named(objects, "Job"), **named(objects, "Deployment")}


def container(workload: dict) -> dict:
    (only,) = workload["spec"]["template"]["spec"]["containers"]
    return only


def environment(workload: dict) -> dict[str, str]:
    return {item["name"]: item["value"] for item in container(workload)["env"]}


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_validates_strictly(rendered, overlay, version):
    for item in rendered[overlay]:
        kubernetes_validate.validate(item, version, strict=True)


def test_strict_validation_rejects_unknown_fields(rendered):
    job = named(rendered["gpu"], "Job")["kerasjobs-train"]
    job["spec"]["template"]["spec"]["restartPolicyy"] = "Never"

    with pytest.raises(kubernetes_validate.ValidationError, match="restartPolicyy"):
        kubernetes_validate.validate(job, KUBERNETES_VERSIONS[-1], strict=True)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_workload_mounts_the_claim_at_its_root(rendered, overlay):
    (claim,) = named(rendered[overlay], "PersistentVolumeClaim")

    for name, workload in workloads(rendered[overlay]).items():
        volumes = workload["spec"]["template"]["spec"]["volumes"]
        data = [v for v in volumes if "persistentVolumeClaim" in v]
        assert [v["persistentVolumeClaim"]["claimName"] for v in data] == [claim]
        mounts = container(workload)["volumeMounts"]
        (mount,) = [m for m in mounts if m["name"] == data[0]["name"]]
        assert mount["mountPath"] == environment(workload)["KERASJOBS_ROOT"], name


def test_volume_is_shared_across_nodes_except_on_one_node(rendered):
    def access(overlay: str) -> list[str]:
        (claim,) = named(rendered[overlay], "PersistentVolumeClaim").values()
        return claim["spec"]["accessModes"]

    assert access("gpu") == ["ReadWriteMany"]
    assert access("local") == ["ReadWriteOnce"]


def test_tensorboard_mounts_the_volume_read_only(rendered):
    deployment = named(rendered["gpu"], "Deployment")["kerasjobs-tensorboard"]

    (mount,) = [m for m in container(deployment)["volumeMounts"] if m["name"] == "data"]
    assert mount["readOnly"] is True


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_only_training_jobs_get_a_gpu(rendered, overlay):
    for name, workload in workloads(rendered[overlay]).items():
        spec = workload["spec"]["template"]["spec"]
        gpus = container(workload)["resources"]["limits"].get("nvidia.com/gpu")
        tolerated = [t.get("key") for t in spec.get("tolerations", [])]
        if overlay == "gpu" and name in GPU_JOBS:
            assert gpus == "1", name
            assert "nvidia.com/gpu" in tolerated, name
            assert spec["nodeSelector"], name
        else:
            assert gpus is None, name
            assert "nvidia.com/gpu" not in tolerated, name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_workers_are_given_the_chief_service_name_and_port(rendered, overlay):
    jobs = named(rendered[overlay], "Job")
    chief, workers = jobs["kerasjobs-tune-chief"], jobs["kerasjobs-tune-workers"]
    service = named(rendered[overlay], "Service")["kerasjobs-tune-chief"]
    (port,) = service["spec"]["ports"]
    (chief_port,) = [
        p for p in container(chief)["ports"] if p["name"] == port["targetPort"]
    ]

    labels = chief["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    assert service["spec"]["clusterIP"] == "None"
    assert environment(workers)["KERASJOBS_TUNE_ORACLE"] == (
        f"{service['metadata']['name']}:{port['port']}"
    )
    assert environment(chief)["KERASJOBS_TUNE_ORACLE"] == (
        f"0.0.0.0:{chief_port['containerPort']}"
    )
    search = {
        key: value
        for key, value in environment(chief).items()
        if not key.endswith(TUNE_SEARCH_EXCEPTIONS)
    }
    assert search.items() <= environment(workers).items()
    assert workers["spec"]["completionMode"] == "Indexed"
    assert workers["spec"]["parallelism"] == workers["spec"]["completions"] >= 1


def test_deploy_targets_select_every_object(rendered):
    """`make deploy-*` apply an overlay by component label, one group each."""
    makefile = (REPOSITORY / "mk" / "k8s.mk").read_text()
    selected = set()
    for group in re.findall(r"component in \(([^)]*)\)", makefile):
        selected.update(group.split(","))
    selected.update(re.findall(r"component=([a-z-]+)'", makefile))

    for overlay in OVERLAYS:
        labels = {
            o["metadata"]["labels"]["app.kubernetes.io/component"]
            for o in rendered[overlay]
        }
        assert labels == selected, overlay


def test_embed_exports_the_run_that_train_writes(rendered):
    jobs = named(rendered["gpu"], "Job")

    assert (
        environment(jobs["kerasjobs-embed"])["KERASJOBS_EMBED_RUN_NAME"]
        == environment(jobs["kerasjobs-train"])["KERASJOBS_TRAIN_RUN_NAME"]
    )


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_container_runs_the_same_image(rendered, overlay):
    images = {container(w)["image"] for w in workloads(rendered[overlay]).values()}

    assert len(images) == 1
    # Tagged by the overlay's `images:` (the base manifests say "kerasjobs").
    assert ":" in images.pop()


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_job_fails_fast_on_usage_errors_and_retries_disruptions(
    rendered, overlay
):
    for name, job in named(rendered[overlay], "Job").items():
        spec = job["spec"]
        rules = spec["podFailurePolicy"]["rules"]
        usage_error = {"containerName": container(job)["name"], "operator": "In"}

        assert spec["template"]["spec"]["restartPolicy"] == "Never", name
        assert spec["template"]["spec"]["terminationGracePeriodSeconds"] > 0, name
        for field in (
            "backoffLimit",
            "activeDeadlineSeconds",
            "ttlSecondsAfterFinished",
        ):
            assert spec[field] > 0, (name, field)
        disruption = {
            "action": "Ignore",
            "onPodConditions": [{"type": "DisruptionTarget"}],
        }
        assert disruption in rules, name
        usage_error = {**usage_error, "values": [2]}
        assert {"action": "FailJob", "onExitCodes": usage_error} in rules, name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_pod_is_locked_down_and_bounded(rendered, overlay):
    for name, workload in workloads(rendered[overlay]).items():
        pod = workload["spec"]["template"]["spec"]
        main = container(workload)
        volumes = {volume["name"]: volume for volume in pod["volumes"]}
        (tmp,) = [m for m in main["volumeMounts"] if m["mountPath"] == "/tmp"]

        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert f"USER {pod['securityContext']['runAsUser']}:" in IMAGE_RECIPE, name
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert main["securityContext"] == {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        }, name
        assert "emptyDir" in volumes[tmp["name"]], name
        for bound in ("requests", "limits"):
            assert {"cpu", "memory"} <= main["resources"][bound].keys(), (name, bound)


def test_manifest_options_are_options_of_their_job(rendered):
    """Click ignores an unknown KERASJOBS_* variable, so a typo would be silent."""
    from kerasjobs.jobs.cli import cli

    for name, workload in workloads(rendered["gpu"]).items():
        (job,) = container(workload)["args"]
        command = cli.get_command(click.Context(cli), job)
        assert command is not None, f"{name} runs {job!r}, which is no job"
        known = {
            parameter.envvar or f"KERASJOBS_{job.upper()}_{parameter.name.upper()}"
            for parameter in command.params
        }
        unknown = [key for key in environment(workload) if key not in known]
        assert unknown == [], name


# Running the rendered local overlay's jobs as local processes.


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class LocalCluster:
    """Turns a workload of the local overlay into a local process."""

    def __init__(self, objects: list[dict], root: Path, logs: Path) -> None:
        self.workloads = workloads(objects)
        self.root = root
        self.logs = logs
        (claim,) = named(objects, "PersistentVolumeClaim")
        self.mount_paths = {
            mount["mountPath"]
            for workload in self.workloads.values()
            for volume in workload["spec"]["template"]["spec"]["volumes"]
            if volume.get("persistentVolumeClaim", {}).get("claimName") == claim
            for mount in container(workload)["volumeMounts"]
            if mount["name"] == volume["name"]
        }

        # Each Service's name answers on 127.0.0.1, its port on a free port.
        self.hosts = {"0.0.0.0"}
        self.ports: dict[int, int] = {}
        for service in named(objects, "Service").values():
            self.hosts.add(service["metadata"]["name"])
            for port in service["spec"]["ports"]:
                local = free_port()
                self.ports[port["port"]] = local
                self.ports[self.target_port(service, port["targetPort"])] = local

    def target_port(self, service: dict, target: int | str) -> int:
        if isinstance(target, int):
            return target
        selector = service["spec"]["selector"].items()
        for workload in self.workloads.values():
            if selector <= workload["spec"]["template"]["metadata"]["labels"].items():
                for port in container(workload).get("ports", []):
                    if port["name"] == target:
                        return port["containerPort"]
        raise AssertionError(f"no pod of {service['metadata']['name']} has {target}")

    def localize(self, name: str, value: str) -> str:
        for mount_path in self.mount_paths:
            if value == mount_path or value.startswith(mount_path + "/"):
                return str(self.root) + value[len(mount_path) :]
        address = re.fullmatch(r"([A-Za-z0-9.-]+):(\d+)", value)
        if address and address.group(1) in self.hosts:
            return (
                f"127.0.0.1:{self.ports.get(int(address.group(2)), address.group(2))}"
            )
        if value in self.hosts:
            return "127.0.0.1"
        if name.endswith("_PORT") and value.isdigit():
            return str(self.ports.get(int(value), value))
        return value

    def command(self, name: str, index: int | None = None) -> tuple[list, dict]:
        """The argv and environment of workload `name` (completion `index`)."""
        main = container(self.workloads[name])
        assert "command" not in main, "the image's ENTRYPOINT runs every job"
        environ = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("KERASJOBS_", "KERASTUNER_", "JOB_COMPLETION"))
        }
        manifest = {
            key: self.localize(key, value)
            for key, value in environment(self.workloads[name]).items()
        }
        overrides = OVERRIDES.get(name, {})
        assert overrides.keys() <= manifest.keys(), "override only what is set"
        environ.update(manifest, **overrides)
        if index is not None:
            environ["JOB_COMPLETION_INDEX"] = str(index)
        argv = [sys.executable, "-m", "kerasjobs", *main.get("args", [])]
        return [self.localize("", arg) for arg in argv], environ

    def start(self, name: str, index: int | None = None) -> subprocess.Popen:
        argv, environ = self.command(name, index)
        label = name if index is None else f"{name}-{index}"
        with (self.logs / f"{label}.log").open("w") as log:
            return subprocess.Popen(
                argv, env=environ, stdout=log, stderr=subprocess.STDOUT
            )

    def run(self, name: str, timeout: float = 150) -> None:
        process = self.start(name)
        assert process.wait(timeout=timeout) == 0, self.log(name)

    def log(self, label: str) -> str:
        return (self.logs / f"{label}.log").read_text()[-3000:]


@pytest.fixture(scope="module")
def cluster(rendered, tmp_path_factory) -> LocalCluster:
    """The local overlay, with a root whose dataset cache is already staged.

    The file is a small MNIST in Keras' format (mnist.npz) where the fetch job
    puts the download, so no job needs the network.
    """
    root = tmp_path_factory.mktemp("volume")
    logs = tmp_path_factory.mktemp("logs")
    generator = np.random.default_rng(0)
    cache = Layout(root).datasets / "mnist"
    cache.mkdir(parents=True)
    np.savez(
        cache / "mnist.npz",
        x_train=generator.integers(0, 256, (512, 28, 28), dtype=np.uint8),
        y_train=generator.integers(0, 10, 512, dtype=np.uint8),
        x_test=generator.integers(0, 256, (128, 28, 28), dtype=np.uint8),
        y_test=generator.integers(0, 10, 128, dtype=np.uint8),
    )
    return LocalCluster(rendered["local"], root, logs)


@pytest.fixture(scope="module")
def trained(cluster) -> LocalCluster:
    cluster.run("kerasjobs-train", timeout=300)
    return cluster


def test_fetch_job_finds_the_staged_dataset(cluster):
    argv, environ = cluster.command("kerasjobs-fetch")
    usage = subprocess.run([*argv, "--help"], env=environ, capture_output=True)

    cluster.run("kerasjobs-fetch")

    assert usage.returncode == 0
    assert "512 training and 128 test rows" in cluster.log("kerasjobs-fetch")


def test_train_job_trains_the_run_embed_expects(trained):
    run = environment(trained.workloads["kerasjobs-train"])["KERASJOBS_TRAIN_RUN_NAME"]

    metrics = json.loads(Layout(trained.root).run(run).metrics.read_text())
    assert metrics["status"] == "finished"


def test_embed_job_exports_the_trained_run(trained):
    trained.run("kerasjobs-embed")

    run = environment(trained.workloads["kerasjobs-embed"])["KERASJOBS_EMBED_RUN_NAME"]
    assert Layout(trained.root).run(run).projector_config.is_file()


def test_tune_chief_and_workers_finish_the_search(cluster):
    workers = cluster.workloads["kerasjobs-tune-workers"]["spec"]["completions"]

    chief = cluster.start("kerasjobs-tune-chief")
    processes = {
        f"kerasjobs-tune-workers-{index}": cluster.start(
            "kerasjobs-tune-workers", index
        )
        for index in range(workers)
    }
    processes["kerasjobs-tune-chief"] = chief

    codes: dict[str, int | None] = {}
    deadline = time.monotonic() + 240
    try:
        for label, process in processes.items():
            remaining = max(1.0, deadline - time.monotonic())
            codes[label] = process.wait(timeout=remaining)
    except subprocess.TimeoutExpired:
        pass
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.kill()
                process.wait()

    for label in processes:
        assert codes.get(label) == 0, f"{label}: {cluster.log(label)}"
    project = environment(cluster.workloads["kerasjobs-tune-chief"])[
        "KERASJOBS_TUNE_PROJECT"
    ]
    assert Layout(cluster.root).tuning_project(project).is_dir()


def test_tensorboard_deployment_serves_the_trained_run(trained):
    run = environment(trained.workloads["kerasjobs-train"])["KERASJOBS_TRAIN_RUN_NAME"]
    _, environ = trained.command("kerasjobs-tensorboard")
    address = f"http://127.0.0.1:{environ['KERASJOBS_TENSORBOARD_PORT']}/data/runs"

    server = trained.start("kerasjobs-tensorboard")
    runs: list[str] = []
    try:
        # TensorBoard loads runs in the background: poll until the run appears.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any(
            name.startswith(run) for name in runs
        ):
            time.sleep(1)
            try:
                with urllib.request.urlopen(address, timeout=5) as response:
                    runs = json.load(response)
            except OSError:
                continue
    finally:
        server.terminate()
        server.wait(timeout=30)

    assert any(name.startswith(run) for name in runs), trained.log(
        "kerasjobs-tensorboard"
    )

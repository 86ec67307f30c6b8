"""The image without a Docker engine: lint, layer order, build context, wheel."""

from __future__ import annotations

import fnmatch
import json
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
import tomllib

REPOSITORY = Path(__file__).resolve().parent.parent
DOCKERFILE = REPOSITORY / "docker" / "Dockerfile"
BIN = Path(sys.executable).parent


def instructions() -> list[tuple[str, str]]:
    """The Dockerfile's (INSTRUCTION, arguments), continuation lines joined."""
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines()]
    pairs = []
    for line in lines:
        if line and not line.startswith("#"):
            keyword, _, arguments = line.partition(" ")
            pairs.append((keyword.upper(), " ".join(arguments.split())))
    return pairs


def entrypoint() -> list[str]:
    """The image's ENTRYPOINT, in exec form."""
    values = [
        arguments for keyword, arguments in instructions() if keyword == "ENTRYPOINT"
    ]
    return json.loads(values[-1])


def test_dockerfile_passes_hadolint():
    result = subprocess.run(
        [str(BIN / "hadolint"), str(DOCKERFILE)], capture_output=True, text=True
    )

    assert result.returncode == 0, result.stdout + result.stderr


def test_dependencies_are_installed_before_the_code_is_copied():
    steps = [f"{keyword} {arguments}" for keyword, arguments in instructions()]

    def first(prefix: str) -> int:
        return next(i for i, step in enumerate(steps) if step.startswith(prefix))

    copy_metadata = first("COPY pyproject.toml")
    install_dependencies = first("RUN python requirements.py")
    copy_code = first("COPY lib")
    install_code = first("RUN pip install --no-cache-dir --no-deps .")
    assert copy_metadata < install_dependencies < copy_code < install_code


def test_image_runs_the_cli_as_a_numeric_non_root_user_on_a_read_only_root():
    steps = instructions()
    users = [arguments for keyword, arguments in steps if keyword == "USER"]
    environment = " ".join(
        arguments for keyword, arguments in steps if keyword == "ENV"
    )
    arguments = [arguments for keyword, arguments in steps if keyword == "ARG"]

    user, _, group = users[-1].partition(":")
    assert user.isdigit() and int(user) > 0 and group.isdigit()
    assert entrypoint() == ["kerasjobs"]
    assert "KERASJOBS_ROOT=/data" in environment
    # Everything a library writes on its own goes below /tmp, an emptyDir.
    for variable in ("HOME", "KERAS_HOME", "MPLCONFIGDIR", "XDG_CACHE_HOME"):
        assert f"{variable}=/tmp" in environment
    assert any(argument.startswith("KERASJOBS_GIT_COMMIT") for argument in arguments)
    assert "KERASJOBS_GIT_COMMIT=${KERASJOBS_GIT_COMMIT}" in environment


def test_image_tensorflow_has_the_project_pin_with_the_cuda_extra():
    project = tomllib.loads((REPOSITORY / "pyproject.toml").read_text())["project"]
    result = subprocess.run(
        [
            sys.executable,
            str(REPOSITORY / "docker" / "requirements.py"),
            str(REPOSITORY / "pyproject.toml"),
            "and-cuda",
        ],
        capture_output=True,
        text=True,
        check=True,
    )

    pinned = next(d for d in project["dependencies"] if d.startswith("tensorflow"))
    expected = pinned.replace("tensorflow", "tensorflow[and-cuda]", 1)
    assert expected in result.stdout.splitlines()
    assert len(result.stdout.splitlines()) == len(project["dependencies"])


def excluded(path: str, patterns: list[str]) -> bool:
    """Whether .dockerignore `patterns` keep `path` out of the build context.

    As Docker does: the last pattern that matches the path or one of its
    parent folders decides, and `!` re-includes.
    """
    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    decision = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        glob = pattern.removeprefix("!").rstrip("/")
        if any(fnmatch.fnmatchcase(candidate, glob) for candidate in candidates):
            decision = not negated
    return decision


def test_build_context_holds_what_the_image_copies_and_nothing_local():
    lines = (REPOSITORY / ".dockerignore").read_text().splitlines()
    patterns = [line.strip() for line in lines if line.strip()]
    patterns = [pattern for pattern in patterns if not pattern.startswith("#")]
    copied = ["pyproject.toml", "README.md", "docker/requirements.py"]
    copied += [str(p.relative_to(REPOSITORY)) for p in REPOSITORY.glob("lib/*.py")]
    copied += [str(p.relative_to(REPOSITORY)) for p in REPOSITORY.glob("jobs/*.py")]
    local = [
        ".venv/bin/python",
        ".git/config",
        "runs/mnist/config.json",
        "tests/conftest.py",
        "lib/__pycache__/layout.cpython-311.pyc",
        "build/k8s/gpu.yaml",
    ]

    assert [path for path in copied if excluded(path, patterns)] == []
    assert [path for path in local if not excluded(path, patterns)] == []


@pytest.fixture(scope="module")
def installed_wheel(tmp_path_factory) -> Path:
    """A fresh venv with the image's wheel installed, and no dependencies.

    The wheel is built, as in the image, from the files the Dockerfile copies.
    The venv sees this venv's site-packages (for TensorFlow and the rest)
    through a .pth file that comes after its own, so kerasjobs is the wheel's.
    """
    work = tmp_path_factory.mktemp("wheel")
    source = work / "source"
    for name in ("pyproject.toml", "README.md"):
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPOSITORY / name, source / name)
    for folder in ("lib", "jobs"):
        shutil.copytree(
            REPOSITORY / folder,
            source / folder,
            ignore=shutil.ignore_patterns("__pycache__"),
        )

    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet"]
    subprocess.run(
        [*pip, "wheel", "--no-deps", "--wheel-dir", str(work / "dist"), str(source)],
        check=True,
    )
    wheel = next((work / "dist").glob("kerasjobs-*.whl"))

    venv = work / "venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True
    )
    python = venv / "bin" / "python"
    subprocess.run(
        [*pip, "--python", str(python), "install", "--no-deps", str(wheel)], check=True
    )
    own = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    (Path(own) / "zz-dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    return venv


def test_wheel_installs_the_entry_point_the_image_names(installed_wheel):
    script = installed_wheel / "bin" / entrypoint()[0]

    result = subprocess.run(
        [str(script), "--help"], capture_output=True, text=True, timeout=120
    )
    origin = subprocess.run(
        [
            str(installed_wheel / "bin" / "python"),
            "-c",
            "import kerasjobs.jobs.cli as cli; print(cli.__file__)",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stderr
    # Every job whose module is in the tree is in the wheel, and listed.
    for job in ("train", "embed", "tune", "fetch", "tensorboard"):
        if (REPOSITORY / "jobs" / f"{job}.py").exists():
            assert f"  {job} " in result.stdout, result.stdout
    assert origin.stdout.startswith(str(installed_wheel)), origin.stdout + origin.stderr

"""Print the project's runtime requirements from pyproject.toml, one a line.

The image installs these before it copies the code, so that a code change
does not rebuild the (large) dependency layer. Given an extra such as
`and-cuda`, the TensorFlow requirement is printed with that extra and the
same version range, so the image's TensorFlow always matches the project's pin.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import tomllib

# "tensorflow" followed by a version, a marker or nothing (not tensorflow-cpu).
TENSORFLOW = re.compile(r"^tensorflow(?=\s*(?:[<>=!~;]|$))")


def requirements(pyproject: Path, tensorflow_extra: str = "") -> list[str]:
    """The [project] dependencies, TensorFlow's with `tensorflow_extra` added."""
    with pyproject.open("rb") as stream:
        dependencies = tomllib.load(stream)["project"]["dependencies"]

    if not tensorflow_extra:
        return list(dependencies)
    return [
        TENSORFLOW.sub(f"tensorflow[{tensorflow_extra}]", dependency)
        for dependency in dependencies
    ]


def main() -> None:
    pyproject = Path(sys.argv[1])
    extra = sys.argv[2] if len(sys.argv) > 2 else ""
    sys.stdout.write("".join(f"{line}\n" for line in requirements(pyproject, extra)))


if __name__ == "__main__":
    main()

"""A real TensorBoard server on 127.0.0.1 for tests, on a port the OS picks."""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

_SERVER = r"""
import sys
from tensorboard import program
board = program.TensorBoard()
board.configure(argv=[None, "--logdir", sys.argv[1], "--host", "127.0.0.1",
                      "--port", "0", "--reload_interval", "1"])
print("URL", board.launch(), flush=True)
import time
while True:
    time.sleep(3600)
"""


class TensorBoardServer:
    """Talks to a running server: GET and POST JSON or bytes, with polling."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")

    def get(self, path: str) -> bytes:
        with urllib.request.urlopen(self.base_url + path, timeout=30) as response:
            return response.read()

    def get_json(self, path: str) -> Any:
        return json.loads(self.get(path))

    def post_json(self, path: str, body: dict) -> Any:
        request = urllib.request.Request(
            self.base_url + path,
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    def wait_for(
        self, fetch: Callable[[], Any], ready: Callable[[Any], bool], timeout=60.0
    ) -> Any:
        """Call `fetch` until `ready(result)` holds; return the last result."""
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            try:
                last = fetch()
                if ready(last):
                    return last
            except (urllib.error.URLError, ConnectionError, ValueError):
                pass
            time.sleep(0.5)
        raise TimeoutError(f"TensorBoard never became ready; last answer: {last!r}")


@contextlib.contextmanager
def serve(logdir: Path, timeout: float = 90.0) -> Iterator[TensorBoardServer]:
    """Start `tensorboard` on `logdir` in its own process; stop it afterwards."""
    process = subprocess.Popen(
        [sys.executable, "-c", _SERVER, str(logdir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    try:
        deadline = time.monotonic() + timeout
        url = None
        while url is None and time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line and process.poll() is not None:
                raise RuntimeError("TensorBoard exited before it served")
            match = re.match(r"URL (\S+)", line)
            url = match.group(1) if match else None
        if url is None:
            raise TimeoutError("TensorBoard did not report its address")
        yield TensorBoardServer(url)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()

"""Start and stop a headless JupyterLab on notebooks/, as `./run_all.sh lab` does, for the tests and the browser check.

`running_lab()` is a context manager yielding the server's base URL and token; the server gets a free port, a random
token, no browser, and is terminated (then killed if it must be) on exit.
"""
from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT_S = 60     # a cold start on a busy 2-core machine takes ~5-15 s


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(url: str, token: str) -> object:
    request = urllib.request.Request(url, headers={"Authorization": f"token {token}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


@contextlib.contextmanager
def running_lab(env: dict[str, str] | None = None, extra_args: list[str] | None = None,
                notebook_dir: Path = ROOT / "notebooks") -> Iterator[tuple[str, str]]:
    """(base URL, token) of a JupyterLab serving `notebook_dir` (notebooks/) with this interpreter's kernels."""
    port, token = free_port(), secrets.token_hex(16)
    command = [sys.executable, "-m", "jupyterlab", "--no-browser", "--notebook-dir", str(notebook_dir),
               f"--port={port}", "--ip=127.0.0.1", f"--IdentityProvider.token={token}",
               "--ServerApp.open_browser=False"] + (["--allow-root"] if os.geteuid() == 0 else [])
    command += extra_args or []
    server_env = {**os.environ, **(env or {})}
    server_env.pop("MPLBACKEND", None)     # as ./run_all.sh lab: the kernel uses the inline backend
    process = subprocess.Popen(command, cwd=ROOT, env=server_env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"jupyter lab exited with {process.returncode}: {process.stderr.read()[-2000:]}")
            try:
                get_json(f"{url}/api/status", token)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"jupyter lab did not answer on {url} within {START_TIMEOUT_S} s")
                time.sleep(0.3)
        yield url, token
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

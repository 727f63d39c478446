"""Start real `smsgate` processes for tests that need them."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import httpx

SMSGATE = str(Path(sys.executable).parent / "smsgate")


def wait_until_up(
    port: int, process: subprocess.Popen[Any], timeout: float = 30, log: Path | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            if log is not None:
                output = log.read_text(errors="replace")
            else:
                output = process.stdout.read() if process.stdout else ""
            raise RuntimeError(f"smsgate exited with {process.returncode}:\n{output}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"smsgate did not start on port {port} within {timeout} s")


@contextlib.contextmanager
def running_server(
    port: int, env: dict[str, str], *args: str, cwd: str | None = None, pipe_output: bool = False
) -> Iterator[subprocess.Popen[str]]:
    """`smsgate serve` on `port`. Its output goes to a temporary file: a pipe nobody reads
    fills up (the server logs a line per request) and would block the server. With
    `pipe_output` the test reads `process.stdout` itself (the demo's banner)."""
    log_path: Path | None = None
    log_file: IO[str] | None = None
    if not pipe_output:
        handle, name = tempfile.mkstemp(prefix="smsgate-serve-", suffix=".log")
        os.close(handle)
        log_path = Path(name)
        log_file = log_path.open("w")
    process = subprocess.Popen(
        [SMSGATE, "serve", "--port", str(port), *args],
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE if pipe_output else log_file,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        wait_until_up(port, process, log=log_path)
        yield process
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        if process.stdout:
            process.stdout.close()
        if log_file is not None and log_path is not None:
            log_file.close()
            log_path.unlink(missing_ok=True)

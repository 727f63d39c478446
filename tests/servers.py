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
                assert_listens(process.pid, port)
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"smsgate did not start on port {port} within {timeout} s")


def _listening_inodes(port: int) -> set[str]:
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as rows:
            next(rows)
            for row in rows:
                fields = row.split()
                if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                    inodes.add(fields[9])
    return inodes


def listening_pids(port: int) -> set[int]:
    """The processes holding a listening TCP socket on `port` (Linux /proc)."""
    wanted = {f"socket:[{inode}]" for inode in _listening_inodes(port)}
    pids = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            for fd in (entry / "fd").iterdir():
                with contextlib.suppress(OSError):
                    if os.readlink(fd) in wanted:
                        pids.add(int(entry.name))
                        break
    return pids


def assert_listens(pid: int, port: int) -> None:
    """The server answering on `port` is the one this test started (`pid` or its child),
    not another run's process that took the port first."""
    for owner in listening_pids(port):
        if owner == pid:
            return
        with contextlib.suppress(OSError):
            stat = Path(f"/proc/{owner}/stat").read_text()
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                return
    raise RuntimeError(f"port {port} answers, but not from process {pid} (port taken by another)")


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

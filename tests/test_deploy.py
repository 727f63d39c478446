"""Deployment files, checked without Docker: compose structure, settings, the image's commands."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from conftest import REPO_ROOT, TEST_SECRET_KEY, free_port
from servers import SMSGATE
from smsgate.config import Settings

COMPOSE = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())
DOCKERFILE = (REPO_ROOT / "Dockerfile").read_text()


def _json_instruction(name: str) -> list[str]:
    """The JSON-array form of a Dockerfile instruction (continuation lines joined)."""
    text = DOCKERFILE.replace("\\\n", " ")
    match = re.search(rf"^{name}\s+(\[.*\])\s*$", text, re.MULTILINE)
    assert match, f"no {name} in JSON form"
    value: list[str] = json.loads(match.group(1))
    return value


def test_compose_has_the_documented_services() -> None:
    services = COMPOSE["services"]
    assert set(services) == {"mysql", "redis", "migrate", "api1", "api2", "worker1", "worker2"}
    assert services["mysql"]["image"].startswith("mysql:8")
    assert services["redis"]["image"].startswith("redis:7")
    assert services["migrate"]["command"] == ["db", "upgrade"]
    for name in ("api1", "api2"):
        assert services[name]["command"][:1] == ["serve"]
        assert "--no-migrate" in services[name]["command"]
        assert services[name]["depends_on"]["migrate"]["condition"] == (
            "service_completed_successfully"
        )
    for name in ("worker1", "worker2"):
        assert services[name]["command"][:1] == ["worker"]


def test_compose_environment_is_valid_settings() -> None:
    env: dict[str, Any] = dict(COMPOSE["x-smsgate-env"])
    # ${SMSGATE_SECRET_KEY:?...} is filled in by the operator.
    assert env["SMSGATE_SECRET_KEY"].startswith("${SMSGATE_SECRET_KEY:?")
    env["SMSGATE_SECRET_KEY"] = TEST_SECRET_KEY
    known = {f"SMSGATE_{name.upper()}" for name in Settings.model_fields}
    assert set(env) <= known, f"unknown settings: {set(env) - known}"
    saved = {k: v for k, v in os.environ.items() if k.startswith("SMSGATE_")}
    try:
        for key in saved:
            del os.environ[key]
        os.environ.update({k: str(v) for k, v in env.items()})
        settings = Settings()
    finally:
        for key in env:
            os.environ.pop(key, None)
        os.environ.update(saved)
    assert settings.database_url.startswith("mysql+asyncmy://")
    assert settings.redis_url == "redis://redis:6379/0"
    # Every app and worker container gets the same environment.
    for name in ("api1", "api2", "worker1", "worker2", "migrate"):
        assert COMPOSE["services"][name]["environment"] == COMPOSE["x-smsgate-env"]


def test_dockerfile_is_multi_stage_non_root_with_a_healthcheck() -> None:
    assert len(re.findall(r"^FROM ", DOCKERFILE, re.MULTILINE)) >= 2
    users = re.findall(r"^USER (\S+)", DOCKERFILE, re.MULTILINE)
    assert users and users[-1] not in {"root", "0"}
    assert "HEALTHCHECK" in DOCKERFILE
    assert _json_instruction("ENTRYPOINT") == ["smsgate"]


@pytest.mark.slow
def test_the_images_commands_work_when_run_directly(tmp_path: Path) -> None:
    """The image's CMD, the compose commands and the health check, run as processes here."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMSGATE_")}
    env.update(
        SMSGATE_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'deploy.db'}",
        SMSGATE_SECRET_KEY=TEST_SECRET_KEY,
        SMSGATE_LOG_FORMAT="json",
    )
    migrate = subprocess.run(
        [SMSGATE, *COMPOSE["services"]["migrate"]["command"]],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert migrate.returncode == 0, migrate.stderr

    port = free_port()
    cmd = _json_instruction("CMD")
    cmd = [("127.0.0.1" if arg == "0.0.0.0" else arg) for arg in cmd]  # noqa: S104
    cmd[cmd.index("--port") + 1] = str(port)
    healthcheck = _json_instruction("HEALTHCHECK --interval=10s --timeout=3s "
                                     "--start-period=30s --retries=3\\s+CMD")  # fmt: skip
    with (tmp_path / "serve.log").open("w") as log:
        server = subprocess.Popen(
            [SMSGATE, *cmd], env=env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        worker = subprocess.Popen(
            [SMSGATE, *COMPOSE["services"]["worker1"]["command"]],
            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert server.poll() is None and time.monotonic() < deadline
                time.sleep(0.1)
            probe = [arg.replace(":8080/", f":{port}/") for arg in healthcheck]
            assert subprocess.run(probe, timeout=30).returncode == 0
            time.sleep(0.5)
            assert worker.poll() is None, "the worker exited"
        finally:
            for process in (server, worker):
                os.killpg(process.pid, signal.SIGTERM)
            worker_code = worker.wait(timeout=60)
            server.wait(timeout=60)
    assert worker_code == 0, (tmp_path / "serve.log").read_text()[-2000:]

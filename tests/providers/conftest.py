"""Fixtures for provider tests: simulators on 127.0.0.1 and a real aiohttp client session."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from smsgate.providers.base import SendRequest
from smsgate.providers.simulators.base import STATE, SimulatorConfig, SimulatorState

AK = "sim-ak"
SECRET = "sim-secret-密钥"


@dataclass
class RunningSimulator:
    url: str
    state: SimulatorState
    app: web.Application

    @property
    def requests(self) -> list[dict[str, Any]]:
        return self.state.requests


@asynccontextmanager
async def running(
    create_app: Callable[[SimulatorConfig], web.Application], **config: Any
) -> AsyncIterator[RunningSimulator]:
    settings = SimulatorConfig(
        **{"access_key_id": AK, "access_key_secret": SECRET, "hang_seconds": 1.0, **config}
    )
    app = create_app(settings)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    try:
        yield RunningSimulator(str(server.make_url("")).rstrip("/"), app[STATE], app)
    finally:
        await server.close()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


def make_request(
    phones: list[str],
    *,
    params: tuple[str, ...] = ("1234",),
    names: tuple[str, ...] = ("code",),
    template: str = "您的验证码是${code}",
    sign_name: str = "阿里云短信测试",
    template_id: str = "SMS_154950909",
    correlation_id: str = "corr-1",
) -> SendRequest:
    content = template
    for name, value in zip(names, params, strict=True):
        content = content.replace("${" + name + "}", value).replace("{" + name + "}", value)
    return SendRequest(
        phones=phones,
        sign_name=sign_name,
        template_id=template_id,
        params=params,
        param_names=names,
        template_content=template,
        content=content,
        correlation_id=correlation_id,
    )

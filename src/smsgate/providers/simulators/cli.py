"""`smsgate simulate <provider>`: run a provider simulator as a local sandbox."""

from __future__ import annotations

import enum
import importlib
from collections.abc import Callable
from typing import Annotated

import typer
from aiohttp import web

from smsgate.providers.simulators.base import SimulatorConfig


class SimulatedProvider(enum.StrEnum):
    aliyun = "aliyun"
    tencent = "tencent"
    qiniu = "qiniu"
    huawei = "huawei"
    twilio = "twilio"


def app_factory(provider: SimulatedProvider) -> Callable[[SimulatorConfig], web.Application]:
    # Imported lazily so `smsgate --help` does not load every simulator.
    module = importlib.import_module(f"smsgate.providers.simulators.{provider.value}")
    factory: Callable[[SimulatorConfig], web.Application] = module.create_app
    return factory


simulate_cli = typer.Typer(
    help="Run a provider simulator (signature checks, real answer formats) as a sandbox.",
    no_args_is_help=True,
)


def _command(provider: SimulatedProvider) -> Callable[..., None]:
    def serve(
        port: Annotated[int, typer.Option(help="TCP port to listen on.")] = 8090,
        host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
        latency_ms: Annotated[int, typer.Option(help="Delay before every answer.")] = 0,
        failure_rate: Annotated[
            float, typer.Option(help="Share (0..1) of send calls answered with a system error.")
        ] = 0.0,
        access_key_id: Annotated[
            str, typer.Option(help="The key id (Twilio: Account SID) the simulator accepts.")
        ] = SimulatorConfig.access_key_id,
        access_key_secret: Annotated[
            str, typer.Option(help="The secret (Twilio: auth token) the simulator accepts.")
        ] = SimulatorConfig.access_key_secret,
    ) -> None:
        if not 0.0 <= failure_rate <= 1.0:
            raise typer.BadParameter("must be between 0 and 1", param_hint="--failure-rate")
        config = SimulatorConfig(
            access_key_id=access_key_id,
            access_key_secret=access_key_secret,
            latency_ms=latency_ms,
            failure_rate=failure_rate,
        )
        app = app_factory(provider)(config)
        typer.echo(
            f"{provider.value} simulator on http://{host}:{port} "
            f"(key id {access_key_id!r}; recorded requests at /_sim/requests)"
        )
        web.run_app(app, host=host, port=port, print=None)

    serve.__doc__ = f"Serve the {provider.value} API on HOST:PORT until interrupted."
    return serve


# One sub-command per provider: `smsgate simulate aliyun --port 8090`.
for _provider in SimulatedProvider:
    simulate_cli.command(name=_provider.value)(_command(_provider))

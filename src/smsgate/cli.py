"""The `smsgate` command: serve, db upgrade, admin create-user, app create."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import typer
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from smsgate.config import Settings, get_settings
from smsgate.db import migrate
from smsgate.db.session import create_engine, create_sessionmaker
from smsgate.errors import GatewayError
from smsgate.observability.logs import configure as configure_logging
from smsgate.providers.simulators.cli import simulate_cli

T = TypeVar("T")

cli = typer.Typer(
    help="smsgate: an SMS gateway in front of many SMS providers.",
    no_args_is_help=True,
    add_completion=False,
)
db_cli = typer.Typer(help="Database schema.", no_args_is_help=True)
admin_cli = typer.Typer(help="Console users.", no_args_is_help=True)
app_cli = typer.Typer(help="Applications that call the send API.", no_args_is_help=True)
records_cli = typer.Typer(help="Send records.", no_args_is_help=True)
cli.add_typer(db_cli, name="db")
cli.add_typer(admin_cli, name="admin")
cli.add_typer(app_cli, name="app")
cli.add_typer(records_cli, name="records")
cli.add_typer(simulate_cli, name="simulate")


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code=2)


def _upgrade(settings: Settings) -> None:
    try:
        migrate.upgrade(settings.database_url)
    except Exception as exc:
        raise _fail(f"cannot migrate the database at {_safe_url(settings)}: {exc}") from exc


def _safe_url(settings: Settings) -> str:
    from sqlalchemy.engine import make_url

    return make_url(settings.database_url).render_as_string(hide_password=True)


def _with_sessions(
    settings: Settings, work: Callable[[async_sessionmaker[AsyncSession]], Awaitable[T]]
) -> T:
    async def run() -> T:
        engine = create_engine(settings)
        try:
            return await work(create_sessionmaker(engine))
        finally:
            await engine.dispose()

    try:
        return asyncio.run(run())
    except GatewayError as exc:
        raise _fail(exc.msg) from exc


@cli.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8080,
    workers: Annotated[
        int, typer.Option(min=1, help="Server processes (needs Redis when > 1).")
    ] = 1,
    demo: Annotated[bool, typer.Option("--demo", help="Seed a working Loopback example.")] = False,
    no_migrate: Annotated[
        bool, typer.Option("--no-migrate", help="Do not run migrations first.")
    ] = False,
    access_log: Annotated[bool, typer.Option("--access-log", help="Log every request.")] = False,
    no_worker: Annotated[
        bool,
        typer.Option("--no-worker", help="Do not run a queue worker in the server processes."),
    ] = False,
) -> None:
    """Run migrations, then serve the send API (and a queue worker, unless --no-worker)."""
    import os

    import uvicorn

    settings = get_settings()
    if settings.secret_key is None:
        if not demo:
            raise _no_secret_key()
        settings = _with_demo_secret(settings)
    settings = settings.model_copy(update={"run_worker": not no_worker})
    os.environ["SMSGATE_RUN_WORKER"] = "0" if no_worker else "1"  # for --workers processes
    configure_logging(settings.log_level, settings.log_format)
    if workers > 1:
        _multiprocess_metrics_dir()
    if workers > 1 and not settings.redis_url:
        raise _fail(
            f"--workers {workers} needs SMSGATE_REDIS_URL: without Redis each process would keep "
            "its own per-minute limits, letting an app send several times its current_limiting. "
            "Set SMSGATE_REDIS_URL=redis://host:6379/0 or run one worker."
        )
    if not no_migrate:
        _upgrade(settings)
    if demo:
        from smsgate.demo import demo_curl, seed_demo

        access = _with_sessions(settings, seed_demo)
        shown_host = "127.0.0.1" if host in {"0.0.0.0", "::"} else host  # noqa: S104
        base_url = f"http://{shown_host}:{port}"
        typer.echo("smsgate demo is ready. Send a message through the Loopback channel with:\n")
        typer.echo(f"  {demo_curl(base_url, access)}\n")
        typer.echo(f"app {access.app_no}, key {access.app_key}")
        typer.echo(
            f"console: {base_url}/admin  user {access.admin_user} / {access.admin_password} "
            "(the key and password are new on every --demo start)"
        )
        sys.stdout.flush()
    options: dict[str, object] = {
        "host": host,
        "port": port,
        "log_level": settings.log_level,
        "access_log": access_log,
        "http": "httptools",
        "loop": "uvloop",
        "timeout_graceful_shutdown": 30,
        "log_config": None,  # keep the structured logging configured above
    }
    if workers > 1:
        uvicorn.run("smsgate.app:create_app_from_env", factory=True, workers=workers, **options)  # type: ignore[arg-type]
    else:
        from smsgate.app import create_app

        uvicorn.run(create_app(settings), **options)  # type: ignore[arg-type]


def _multiprocess_metrics_dir() -> None:
    """prometheus-client aggregates several processes' metrics through files in a folder
    (PROMETHEUS_MULTIPROC_DIR); start each serve with an empty one."""
    import os
    import shutil
    import tempfile
    from pathlib import Path

    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if folder:
        shutil.rmtree(folder, ignore_errors=True)
        Path(folder).mkdir(parents=True, exist_ok=True)
    else:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="smsgate-metrics-")


def _no_secret_key() -> typer.Exit:
    return _fail(
        "SMSGATE_SECRET_KEY is not set. It encrypts provider secrets and signs console "
        "sessions; make one with\n  python3 -c 'import secrets; "
        "print(secrets.token_urlsafe(32))'\nand export SMSGATE_SECRET_KEY=<it> "
        "(keep it: without it stored provider secrets cannot be read). "
        "`smsgate serve --demo` runs without one."
    )


@cli.command()
def worker(
    concurrency: Annotated[
        int, typer.Option(min=1, help="Requests whose batches are sent at the same time.")
    ] = 4,
    no_migrate: Annotated[
        bool, typer.Option("--no-migrate", help="Do not run migrations first.")
    ] = False,
) -> None:
    """Run a queue worker: sends queued messages, applies delivery reports, delivers webhooks.

    Stops on SIGTERM or Ctrl-C after recording what it has in flight.
    """
    settings = get_settings()
    if settings.secret_key is None:
        raise _no_secret_key()
    settings = settings.model_copy(update={"run_worker": True, "worker_concurrency": concurrency})
    configure_logging(settings.log_level, settings.log_format)
    if not no_migrate:
        _upgrade(settings)
    asyncio.run(_run_worker(settings))


async def _run_worker(settings: Settings) -> None:
    import signal

    from smsgate.app import create_app

    app = create_app(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with app.router.lifespan_context(app):
        typer.echo("smsgate worker started", err=True)
        await stop.wait()
        typer.echo("smsgate worker stopping: finishing what is in flight", err=True)


def _with_demo_secret(settings: Settings) -> Settings:
    """The demo keeps a generated secret key in smsgate-demo.key beside its database."""
    import os
    import secrets
    from pathlib import Path

    path = Path.cwd() / "smsgate-demo.key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(32) + "\n", encoding="utf-8")
        path.chmod(0o600)
    key = path.read_text(encoding="utf-8").strip()
    os.environ["SMSGATE_SECRET_KEY"] = key  # for --workers processes, which read the env
    return settings.model_copy(update={"secret_key": SecretStr(key)})


@db_cli.command("upgrade")
def db_upgrade() -> None:
    """Apply every pending migration."""
    settings = get_settings()
    _upgrade(settings)
    typer.echo(f"database at {_safe_url(settings)} is up to date")


@admin_cli.command("create-user")
def create_user(
    name: Annotated[str, typer.Argument(help="User name for the console.")],
    role: Annotated[str, typer.Option(help="admin or viewer.")] = "admin",
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
) -> None:
    """Create a console user (or reset an existing user's password)."""
    from smsgate.users.service import UserService

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    settings = get_settings()
    _upgrade(settings)
    created = _with_sessions(settings, lambda s: UserService(s).set_user(name, password, role))
    typer.echo(f"user {name} {'created' if created else 'updated'} ({role})")


@app_cli.command("create")
def create_app_command(
    name: Annotated[str, typer.Argument(help="Application name.")],
    quota: Annotated[int, typer.Option(min=0, help="Messages it may send (available_number).")],
    rate_limit: Annotated[
        int, typer.Option(min=0, help="Messages per minute (current_limiting); 0: no limit.")
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for machines.")] = False,
) -> None:
    """Create an application and print its API key (shown only this once)."""
    from smsgate.apps.service import AppService

    settings = get_settings()
    _upgrade(settings)
    issued = _with_sessions(
        settings, lambda s: AppService(s).create_app(name, quota=quota, rate_limit=rate_limit)
    )
    if as_json:
        typer.echo(json.dumps({"appNo": issued.app_no, "appKey": issued.app_key}))
    else:
        typer.echo(f"app_no:  {issued.app_no}")
        typer.echo(f"app key: {issued.app_key}")
        typer.echo("Keep the key now: only its hash is stored.")


@records_cli.command("purge")
def purge_records_command(
    older_than_days: Annotated[
        int,
        typer.Option(
            "--older-than-days", min=1, help="Delete records created more than this many days ago."
        ),
    ],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only count what would be deleted.")
    ] = False,
) -> None:
    """Delete old send records and their attempts (never those still in flight)."""
    from datetime import timedelta

    from smsgate.db.base import utcnow
    from smsgate.records.retention import count_purgeable, purge_records

    settings = get_settings()
    before = utcnow() - timedelta(days=older_than_days)

    async def run() -> int:
        engine = create_engine(settings)
        try:
            if dry_run:
                return await count_purgeable(engine, before)
            return await purge_records(
                engine,
                before,
                progress=lambda done: typer.echo(f"deleted {done} record(s)...", err=True),
            )
        finally:
            await engine.dispose()

    try:
        count = asyncio.run(run())
    except Exception as exc:
        raise _fail(f"could not purge records at {_safe_url(settings)}: {exc}") from exc
    stamp = before.strftime("%Y-%m-%d %H:%M:%S")
    if dry_run:
        typer.echo(f"{count} record(s) created before {stamp} UTC would be deleted")
    else:
        typer.echo(f"deleted {count} record(s) created before {stamp} UTC")


def main() -> None:
    cli()

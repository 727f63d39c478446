"""create_app(settings): builds the engine, Redis client, HTTP session and services."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
from fastapi import FastAPI
from redis.asyncio import Redis

from smsgate import __version__
from smsgate.api import admin, callbacks, health, messages, send
from smsgate.api import verification as verification_api
from smsgate.api.errors import install_error_handlers
from smsgate.auth.service import AuthService
from smsgate.blocklist.service import BlocklistService
from smsgate.config import Settings, get_settings
from smsgate.console.views import install_console
from smsgate.crypto import SecretBox
from smsgate.db.session import create_engine, create_sessionmaker
from smsgate.housekeeping import Housekeeping
from smsgate.invalidation import ConfigBus
from smsgate.limits.base import FailureCounter, RateLimiter
from smsgate.limits.breaker import CircuitBreaker, MemoryCircuitBreaker, RedisCircuitBreaker
from smsgate.limits.memory import MemoryFailureCounter, MemoryRateLimiter
from smsgate.limits.phones import MemoryPhoneLimiter, PhoneLimiter, RedisPhoneLimiter
from smsgate.limits.redis import RedisFailureCounter, RedisRateLimiter
from smsgate.management.fallbacks import FallbackService
from smsgate.management.service import ConfigService
from smsgate.observability.logs import configure as configure_logging
from smsgate.observability.metrics import MetricsMiddleware
from smsgate.pipeline.service import QueueService
from smsgate.pipeline.worker import QueueWorker
from smsgate.records.service import RecordService
from smsgate.reports.service import ReportService
from smsgate.sending.service import SendingService
from smsgate.verification.service import VerificationService
from smsgate.verification.store import CodeStore, MemoryCodeStore, RedisCodeStore
from smsgate.webhooks.dispatcher import WebhookDispatcher
from smsgate.webhooks.service import WebhookService

log = logging.getLogger("smsgate")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(settings)
        redis: Redis | None = None
        limiter: RateLimiter
        phone_limiter: PhoneLimiter
        code_store: CodeStore
        failures: FailureCounter
        breaker: CircuitBreaker
        threshold = settings.breaker_failure_threshold
        cooldown = settings.breaker_cooldown_seconds
        if settings.redis_url:
            redis = Redis.from_url(
                settings.redis_url, socket_timeout=2.0, socket_connect_timeout=2.0
            )
            limiter = RedisRateLimiter(redis, settings.redis_key_prefix)
            phone_limiter = RedisPhoneLimiter(redis, settings.redis_key_prefix)
            code_store = RedisCodeStore(redis, settings.redis_key_prefix)
            failures = RedisFailureCounter(redis, settings.redis_key_prefix)
            breaker = RedisCircuitBreaker(redis, settings.redis_key_prefix, threshold, cooldown)
        else:
            limiter = MemoryRateLimiter()
            phone_limiter = MemoryPhoneLimiter()
            code_store = MemoryCodeStore()
            failures = MemoryFailureCounter()
            breaker = MemoryCircuitBreaker(threshold, cooldown)
        sessions = create_sessionmaker(engine)
        bus = ConfigBus(redis, settings.redis_key_prefix)
        # One pooled session per process: a connection pool per provider host, keep-alive,
        # and DNS caching (DESIGN.md §7).
        http = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=settings.http_pool_limit, ttl_dns_cache=300),
            timeout=aiohttp.ClientTimeout(
                total=settings.http_total_timeout_seconds,
                sock_connect=settings.http_connect_timeout_seconds,
            ),
        )
        secret = settings.secret_key.get_secret_value() if settings.secret_key else None
        blocklist = BlocklistService(engine, settings.default_region)
        app.state.blocklist = blocklist
        app.state.settings = settings
        app.state.engine = engine
        app.state.redis = redis
        app.state.http = http
        secrets = SecretBox(secret)
        sending = SendingService(
            settings,
            engine,
            limiter,
            http,
            secrets,
            phone_limiter=phone_limiter,
            blocklist=blocklist,
            breaker=breaker,
        )
        bus.subscribe(sending.invalidate_config)
        bus.subscribe(blocklist.invalidate)
        app.state.sending = sending
        app.state.verification = VerificationService(settings, sending, code_store, limiter)
        app.state.bus = bus
        app.state.auth = AuthService(sessions, failures, secret)
        app.state.config = ConfigService(sessions, secrets, bus, http, blocklist)
        app.state.fallbacks = FallbackService(sessions, bus)
        app.state.records = RecordService(engine)
        reports = ReportService(engine, secrets, settings.config_cache_ttl_seconds)
        bus.subscribe(reports.invalidate_config)
        app.state.reports = reports
        await bus.start()
        webhooks = WebhookDispatcher(engine, secrets, http)
        app.state.webhooks = WebhookService(engine, webhooks)
        sweeper = asyncio.create_task(reports.run_sweeper(), name="smsgate-report-sweeper")
        dispatcher = asyncio.create_task(webhooks.run(), name="smsgate-webhook-dispatcher")
        housekeeping = Housekeeping(engine, record_retention_days=settings.record_retention_days)
        cleaner = asyncio.create_task(housekeeping.run(), name="smsgate-housekeeping")
        app.state.queue = QueueService(engine, sending)
        worker: QueueWorker | None = None
        worker_task: asyncio.Task[None] | None = None
        if settings.run_worker:
            worker = QueueWorker(settings, engine, sending, concurrency=settings.worker_concurrency)
            worker_task = asyncio.create_task(worker.run(), name="smsgate-queue-worker")
        try:
            yield
        finally:
            if worker is not None and worker_task is not None:
                # Finish what is in flight and record it; past the grace period the task is
                # cancelled and its not-yet-dispatched claims go back to the queue.
                worker.stop()
                with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                    await asyncio.wait_for(worker_task, settings.worker_stop_seconds)
            # Background loops stop between database calls (a loop cancelled inside one can
            # leave a driver thread running past the event loop); cancelled only if stuck.
            reports.stop_sweeper()
            webhooks.stop()
            housekeeping.stop()
            for task in (sweeper, dispatcher, cleaner):
                with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                    await asyncio.wait_for(task, 10)
            await bus.stop()
            await http.close()
            await limiter.close()
            if redis is not None:
                await redis.aclose()
            await engine.dispose()

    app = FastAPI(
        title="smsgate",
        version=__version__,
        summary="One HTTP API in front of many SMS providers",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    app.add_middleware(MetricsMiddleware)
    app.include_router(send.router, tags=["send"])
    app.include_router(messages.router, tags=["queued send"])
    app.include_router(verification_api.router, tags=["verification codes"])
    app.include_router(health.router, tags=["health"])
    app.include_router(admin.router)
    app.include_router(callbacks.router, tags=["delivery reports"])
    install_console(app)
    return app


def create_app_from_env() -> FastAPI:
    """Factory for `uvicorn --factory` (used by `smsgate serve --workers N`).

    Each worker process is started afresh, so it sets up its own logging here.
    """
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)
    return create_app(settings)

"""Settings read from the environment (prefix ``SMSGATE_``), see DESIGN.md §6."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SMSGATE_", extra="ignore")

    database_url: str = Field(
        default_factory=lambda: f"sqlite+aiosqlite:///{Path.cwd() / 'smsgate.db'}",
        description="SQLAlchemy async URL; mysql+asyncmy://user:pass@host/db in production",
    )
    redis_url: str | None = Field(
        default=None, description="unset: limits are kept in this process only"
    )
    redis_key_prefix: str = "smsgate:"
    secret_key: SecretStr | None = None
    default_region: str = "CN"
    # The per-request cap on phones; providers split larger lists into several calls.
    max_phones_per_request: int = Field(default=1000, ge=1)
    # POST /api/v1/messages (queued) takes larger lists; workers send them in batches.
    max_phones_per_queued_request: int = Field(default=10_000, ge=1)
    # Queue workers: records claimed per round, how long a claim may stay unfinished
    # before another worker treats its holder as lost, and how often an idle worker polls.
    # `serve` runs a queue worker in each process unless --no-worker; `smsgate worker` too.
    run_worker: bool = False
    worker_concurrency: int = Field(default=4, ge=1)
    worker_stop_seconds: float = Field(default=30.0, gt=0)
    worker_batch_size: int = Field(default=200, ge=1)
    worker_lease_seconds: float = Field(default=60.0, gt=0)
    worker_poll_seconds: float = Field(default=0.5, gt=0)
    # Retryable provider errors (5xx, connection refused) retry the same channel this many
    # times in all, with exponential backoff from worker_retry_base_seconds, plus jitter.
    worker_max_attempts: int = Field(default=5, ge=1)
    worker_retry_base_seconds: float = Field(default=2.0, gt=0)
    # Circuit breaker per channel (docs/failover.md): this many consecutive failed calls
    # (retryable errors, provider rate limits) open it; after the cool-down one probe call
    # is let through and its success closes it.
    breaker_failure_threshold: int = Field(default=5, ge=1)
    breaker_cooldown_seconds: float = Field(default=30.0, gt=0)
    # Reconciling UNKNOWN records (worker): Aliyun channels are asked (QuerySendDetails) once
    # a record is reconcile_query_after_seconds old; a message Aliyun still does not know
    # after reconcile_query_window_seconds was never accepted and is queued again. Other
    # providers: no delivery report within reconcile_report_window_seconds -> FAILED
    # (UNCONFIRMED), never resent.
    reconcile_interval_seconds: float = Field(default=30.0, gt=0)
    reconcile_query_after_seconds: float = Field(default=60.0, ge=0)
    reconcile_query_window_seconds: float = Field(default=600.0, ge=0)
    reconcile_report_window_seconds: float = Field(default=86_400.0, ge=0)
    # Send records (and their attempts) older than this many days are deleted by the hourly
    # housekeeping, except those still in flight (QUEUED, SENDING, UNKNOWN). 0 keeps them
    # forever. `smsgate records purge` does the same on demand (docs/operations.md).
    record_retention_days: int = Field(default=0, ge=0)
    # How long resolved business -> template -> sign -> channel chains are trusted.
    config_cache_ttl_seconds: float = Field(default=2.0, ge=0, le=2.0)
    db_pool_size: int = Field(default=20, ge=1)
    db_max_overflow: int = Field(default=20, ge=0)
    # Outbound HTTP to providers: one pooled aiohttp session per process.
    http_pool_limit: int = Field(default=512, ge=1)
    http_connect_timeout_seconds: float = Field(default=3.0, gt=0)
    http_total_timeout_seconds: float = Field(default=10.0, gt=0)
    log_level: str = "info"
    # json, human, or auto: human in a terminal, JSON lines otherwise.
    log_format: Literal["auto", "json", "human"] = "auto"
    # Per-phone provider codes meaning "this recipient opted out" (Twilio 21610, STOP): the
    # phone is added to the app's blocklist automatically.
    opt_out_codes: frozenset[str] = frozenset({"21610"})
    # Requests per client address per minute to POST /api/v1/verification-codes and
    # .../verify (0: no limit). The caller is usually a business backend, so these bound a
    # leaked app key or a runaway client rather than one end user.
    verification_issue_per_ip_per_minute: int = Field(default=60, ge=0)
    verification_verify_per_ip_per_minute: int = Field(default=120, ge=0)

    @field_validator("redis_url", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


@lru_cache
def get_settings() -> Settings:
    return Settings()

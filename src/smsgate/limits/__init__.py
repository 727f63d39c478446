"""Per-app message rate limits: one interface, an in-process and a Redis backend."""

from smsgate.limits.base import RateDecision, RateLimiter

__all__ = ["RateDecision", "RateLimiter"]

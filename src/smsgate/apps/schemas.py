"""What the send path knows about an application."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class AppSnapshot:
    app_no: str
    app_name: str
    enabled: bool
    current_limiting: int  # messages per any 60 s; 0 or less means no limit
    app_key_hash: str | None

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
    # A callback URL is set: records born final (refused phones) are flagged for the app's
    # webhook at insert, without a locking read of the app row.
    has_callback: bool = False

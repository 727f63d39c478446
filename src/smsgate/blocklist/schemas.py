"""What the blocklist service returns: entries and pages of entries."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class BlockView:
    """One sms_blocklist row."""

    id: int
    phone: str  # E.164, or an E.164 prefix when is_prefix
    is_prefix: bool
    app_no: str | None  # None: every app
    reason: str
    created_by: str
    created_at: datetime

    @property
    def scope(self) -> str:
        return f"app {self.app_no}" if self.app_no else "global"

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "phone": self.phone,
            "isPrefix": self.is_prefix,
            "appNo": self.app_no,
            "reason": self.reason,
            "createdBy": self.created_by,
            "createdAt": self.created_at.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class BlockPage:
    total: int
    items: list[BlockView]

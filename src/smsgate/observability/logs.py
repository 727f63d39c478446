"""Logging: JSON lines for machines, a human format in a terminal; phones masked."""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any

# Fields a record may carry (logger.info(..., extra={...})) that go into the JSON line.
FIELDS = ("requestId", "app", "business", "channel", "outcome", "durationMs", "phones", "code")

_E164 = re.compile(r"\+\d{10,15}")


def mask_phone(phone: str) -> str:
    """`+8618232533068` -> `+86182****3068`: enough to tell numbers apart, not to dial."""
    if len(phone) < 10:
        return "*" * len(phone)
    return phone[:6] + "*" * (len(phone) - 10) + phone[-4:]


def mask_phones(text: str) -> str:
    return _E164.sub(lambda m: mask_phone(m.group(0)), text)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat().replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": mask_phones(record.getMessage()),
        }
        for field in FIELDS:
            value = getattr(record, field, None)
            if value is not None:
                line[field] = value
        if record.exc_info:
            line["exc"] = mask_phones(self.formatException(record.exc_info))
        return json.dumps(line, ensure_ascii=False)


class HumanFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        text = mask_phones(super().format(record))
        extras = [f"{f}={getattr(record, f)}" for f in FIELDS if getattr(record, f, None)]
        return f"{text} {' '.join(extras)}" if extras else text


def configure(level: str = "info", fmt: str = "auto") -> None:
    """`fmt`: json, human, or auto (human in a terminal, JSON otherwise)."""
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if use_json else HumanFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True

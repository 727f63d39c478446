"""Billed segments per message (DESIGN.md §5)."""

from __future__ import annotations

from smsgate.providers.base import FeeScheme

# GSM 03.38 basic set and the extension set (each extension character takes two septets).
_GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_EXTENDED = frozenset("^{}\\[~]|€\f")


def _gsm7_septets(text: str) -> int | None:
    septets = 0
    for char in text:
        if char in _GSM7_BASIC:
            septets += 1
        elif char in _GSM7_EXTENDED:
            septets += 2
        else:
            return None
    return septets


def _split(units: int, single: int, multi: int) -> int:
    if units <= single:
        return 1
    return -(-units // multi)


def count_segments(content: str, scheme: FeeScheme, sign_name: str = "") -> int:
    """Segments billed for one recipient.

    Chinese providers count characters of `【signature】content`: 70 in one message,
    67 per part when longer. International (GSM) counts GSM-7 septets, 160/153, or UTF-16
    code units, 70/67, as soon as one character is outside GSM-7.
    """
    if scheme is FeeScheme.CHINESE:
        text = f"【{sign_name}】{content}" if sign_name else content
        return _split(len(text), 70, 67)
    septets = _gsm7_septets(content)
    if septets is not None:
        return _split(septets, 160, 153)
    utf16_units = len(content.encode("utf-16-le")) // 2
    return _split(utf16_units, 70, 67)

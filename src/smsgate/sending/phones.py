"""Phone numbers to E.164 with `phonenumbers`."""

from __future__ import annotations

import phonenumbers


class PhoneError(ValueError):
    pass


def normalise_phone(raw: str, default_region: str) -> str:
    """E.164 for a valid number; numbers without `+` are read in `default_region`."""
    text = raw.strip()
    if not text:
        raise PhoneError("an empty phone number")
    if len(text) > 32:
        raise PhoneError(f"{text[:32]!r}... is not a phone number")
    try:
        number = phonenumbers.parse(text, default_region)
    except phonenumbers.NumberParseException as exc:
        raise PhoneError(f"{text!r} is not a phone number") from exc
    if not phonenumbers.is_valid_number(number):
        raise PhoneError(f"{text!r} is not a valid phone number")
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))

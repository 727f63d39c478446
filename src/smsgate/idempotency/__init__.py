"""Idempotency-Key: the same key and body within 24 h gives the first answer, sent once."""

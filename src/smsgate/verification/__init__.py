"""Verification codes: issue through a business's template, verify at most once."""

"""Delivery reports: each provider's push format, matched to send records."""

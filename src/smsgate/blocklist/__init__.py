"""Blocklist / opt-out: phones and prefixes never sent to, global or per app."""

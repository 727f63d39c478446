"""smsgate: an SMS gateway in front of many SMS providers."""

__version__ = "0.1.0"

"""Configuration management: channels, signatures, templates, apps and businesses."""

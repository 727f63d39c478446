"""Admin authentication: users, bearer tokens, login throttling, roles."""

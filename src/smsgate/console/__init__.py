"""The web console at /admin: server-rendered pages over the same services as the admin API."""

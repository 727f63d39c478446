"""Provider-side HTTP servers that speak each provider's protocol, for tests and sandboxes."""

"""Applications: the systems that call the gateway, their API keys and quota."""

"""HTTP: the REST API and inbound webhooks (aiohttp)."""

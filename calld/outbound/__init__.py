"""Outbound webhooks: the outbox written with each call event and the worker that delivers it."""

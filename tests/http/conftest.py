"""Fixtures the HTTP tests share."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from calld.http.app import create_app
from calld.service.wiring import Services
from tests.support import AppClient, SettableClock, webhook_signer


@pytest.fixture
async def signed_webhook_api(
    services: Services,
    auth_headers: dict[str, str],
    clock: SettableClock,
    aiohttp_client: Callable[..., Awaitable[AppClient]],
) -> AppClient:
    """A client whose webhook deliveries are signed as the configured sources sign them."""
    return await aiohttp_client(create_app(services), headers=auth_headers, middlewares=(webhook_signer(clock),))

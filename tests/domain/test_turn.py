"""TURN REST credentials (calld.domain.turn) from plain data."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest

from calld.domain.turn import mint, turn_password

NOW = datetime(2026, 12, 3, 12, 0, 0, 500_000, tzinfo=UTC)


def test_the_username_carries_its_expiry_and_the_password_is_its_hmac() -> None:
    minted = mint("shared-secret-123456", "calld-abc", NOW, timedelta(hours=1))
    assert minted.username == f"{int(NOW.timestamp()) + 3600}:calld-abc"
    assert minted.expires_at == datetime(2026, 12, 3, 13, 0, 0, tzinfo=UTC)
    assert len(base64.b64decode(minted.credential)) == 20  # an SHA-1 digest
    assert minted.credential == turn_password("shared-secret-123456", minted.username)
    # The password depends on the secret and on every character of the username (the expiry included).
    assert minted.credential != turn_password("another-secret-1234", minted.username)
    later = mint("shared-secret-123456", "calld-abc", NOW + timedelta(seconds=1), timedelta(hours=1))
    assert later.credential != minted.credential


def test_a_known_value() -> None:
    # Computed with `printf %s '1700000000:alice' | openssl dgst -sha1 -hmac secret -binary | base64`.
    assert turn_password("secret", "1700000000:alice") == "d8soP47RbdIKLDUOpnJPVQyq5Ts="


def test_a_colon_in_the_user_cannot_move_the_expiry() -> None:
    assert mint("s" * 16, "a:b", NOW, timedelta(minutes=1)).username.split(":") == [
        str(int(NOW.timestamp()) + 60),
        "a_b",
    ]


def test_no_secret_or_no_lifetime_mints_nothing() -> None:
    with pytest.raises(ValueError, match="secret"):
        mint("", "u", NOW, timedelta(hours=1))
    with pytest.raises(ValueError, match="lifetime"):
        mint("s" * 16, "u", NOW, timedelta(0))

"""Keeping the CDR documents FreeSWITCH's mod_json_cdr posts, where the adapter reads them.

Each leg's document is kept as ``<uuid>.cdr.json`` (what mod_json_cdr itself writes to its
``err-log-dir``) in the receiver's directory; the FreeSWITCH adapter reads that directory with the
switch's other records after every start and reconnect.
"""

from __future__ import annotations

import asyncio
import os
import re
from pathlib import Path

from calld.adapters.freeswitch.cdr import leg_from_json_text
from calld.domain.errors import InvalidValue

_UUID = re.compile(r"[0-9A-Za-z-]{1,64}")


async def keep_cdr(directory: Path, body: bytes) -> str:
    """Check ``body`` is one leg's JSON CDR and keep it; the leg's uuid."""
    try:
        leg = leg_from_json_text(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidValue("body", f"not a FreeSWITCH JSON CDR: {exc}") from None
    uuid = leg.get("uuid", "")
    if not _UUID.fullmatch(uuid):
        raise InvalidValue("variables.uuid", "missing, or not a channel uuid")
    await asyncio.to_thread(_keep, directory, uuid, body)
    return uuid


def _keep(directory: Path, uuid: str, body: bytes) -> None:
    """Write the document whole or not at all (a reader never sees half a file), durably."""
    directory.mkdir(parents=True, exist_ok=True)
    final = directory / f"{uuid}.cdr.json"
    partial = directory / f".{uuid}.cdr.json.part"
    with open(partial, "wb") as handle:
        handle.write(body)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(partial, final)

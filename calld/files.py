"""Files calld creates that hold call data or secrets (the SQLite database, the spill file): owner
only (0600), whatever the process umask, because outside the unit's ``UMask`` it may be 022."""

from __future__ import annotations

import os
import stat
from pathlib import Path

PRIVATE_MODE = 0o600


def private_opener(path: str, flags: int) -> int:
    """For ``open(..., opener=private_opener)``: created 0600; an existing file loses any group and
    other permission it had."""
    fd = os.open(path, flags, PRIVATE_MODE)
    if os.fstat(fd).st_mode & 0o077:
        os.fchmod(fd, PRIVATE_MODE)
    return fd


def make_private(path: Path) -> bool:
    """Create ``path`` empty with mode 0600 if it does not exist (True), else take group and other
    permissions off it (False)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_MODE)
    except FileExistsError:
        if stat.S_IMODE(path.stat().st_mode) & 0o077:
            path.chmod(PRIVATE_MODE)
        return False
    os.close(fd)
    return True

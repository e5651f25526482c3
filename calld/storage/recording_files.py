"""The recording files a switch reports, as calld sees them on disk when it runs beside the switch."""

from __future__ import annotations

import contextlib
import os
import stat
import wave
from pathlib import Path, PurePosixPath

from calld.domain.recording import FileFacts

# Only audio files are looked at: the path comes from a switch event (or the recording row).
AUDIO_SUFFIXES = frozenset(
    {".wav", ".wav49", ".gsm", ".mp3", ".ogg", ".opus", ".flac", ".m4a", ".sln", ".ulaw", ".alaw"}
)


class RecordingFiles:
    """Reads a recording's size (and a WAV file's length) from disk. ``root`` is where the switch's file
    system is seen from calld (a chroot, a container volume, a mount); empty: the switch's own paths."""

    def __init__(self, root: str = "") -> None:
        self.root = Path(root) if root else None

    def facts(self, path: str | None) -> FileFacts | None:
        """What the file says, or None when calld cannot see it."""
        if not path or PurePosixPath(path).suffix.lower() not in AUDIO_SUFFIXES:
            return None
        local = self.root / path.lstrip("/") if self.root is not None else Path(path)
        try:
            info = local.stat()
        except (OSError, ValueError):
            return None
        if not stat.S_ISREG(info.st_mode):
            return None
        return FileFacts(info.st_size, _wav_seconds(local, info.st_size) if local.suffix.lower() == ".wav" else None)


def _wav_seconds(path: Path, size: int) -> float | None:
    """A WAV file's length: from its header, or from its size when the header was not finished yet
    (the writer fills in the data length when it closes the file)."""
    with contextlib.suppress(OSError, EOFError, wave.Error), wave.open(os.fspath(path), "rb") as audio:
        rate, frames = audio.getframerate(), audio.getnframes()
        frame_bytes = audio.getsampwidth() * audio.getnchannels()
        if rate <= 0 or frame_bytes <= 0:
            return None
        if frames == 0 and size > 44:
            frames = (size - 44) // frame_bytes
        return round(frames / rate, 3)
    return None

"""Incremental codec for the Asterisk Manager Interface (AMI) wire format. Pure: no I/O.

On the wire a message is a block of ``Name: value`` lines ending in ``\\r\\n`` and terminated by an
empty line. The server first sends a single banner line (``Asterisk Call Manager/9.0.0``) with no
blank line after it. Names may repeat within one message (``ChanVariable``, ``Output`` of the
``Command`` action), so a message keeps its headers in order; mapping-style access returns the
first value. Old Asterisk versions answer ``Command`` with ``Response: Follows`` and raw output
lines up to ``--END COMMAND--``; those lines become ``Output`` headers.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Final, TypeVar, overload

_T = TypeVar("_T")

BANNER_PREFIX = "Asterisk Call Manager/"
# One ``Name: value`` header line with its CRLF (see AmiParser._whole_message).
_HEADER_LINE: Final = re.compile(r"([^:\r\n]*): ?([^\r\n]*)\r\n")
_END_COMMAND = "--END COMMAND--"


class AmiMessage(Mapping[str, str]):
    """One AMI message (event, response or action): ordered headers, first value wins on lookup."""

    __slots__ = ("_first", "headers")

    def __init__(self, headers: Iterable[tuple[str, str]]) -> None:
        self.headers: tuple[tuple[str, str], ...] = tuple(headers)
        first = dict(self.headers)  # in C; right unless a name repeats (then the last would win)
        if len(first) != len(self.headers):
            first = {}
            for name, value in self.headers:
                first.setdefault(name, value)
        self._first = first

    def __getitem__(self, name: str) -> str:
        return self._first[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._first)

    # Mapping's own get and __contains__ go through __getitem__ and KeyError; the mapper asks
    # ~8 of them per event, so answer from the dict directly.
    @overload
    def get(self, name: str, /) -> str | None: ...
    @overload
    def get(self, name: str, default: str, /) -> str: ...
    @overload
    def get(self, name: str, default: _T, /) -> str | _T: ...
    def get(self, name: str, default: object = None, /) -> object:
        return self._first.get(name, default)

    def __contains__(self, name: object) -> bool:
        return name in self._first

    def __len__(self) -> int:
        return len(self._first)

    def __repr__(self) -> str:
        return f"AmiMessage({list(self.headers)!r})"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, AmiMessage):
            return self.headers == other.headers
        return super().__eq__(other)

    def __hash__(self) -> int:
        return hash(self.headers)

    def get_all(self, name: str) -> list[str]:
        """Every value of ``name``, in wire order (``ChanVariable`` may repeat)."""
        return [value for key, value in self.headers if key == name]

    @property
    def event(self) -> str | None:
        """The event name, or None for responses."""
        return self._first.get("Event")

    @property
    def response(self) -> str | None:
        """``Success``/``Error``/``Goodbye``/... for responses, else None."""
        return self._first.get("Response")


class AmiParser:
    """Feed it received bytes in any chunking; it returns the complete messages so far.

    ``banner`` holds the server greeting line once seen (it is not returned as a message).
    """

    def __init__(self) -> None:
        self.banner: str | None = None
        self._buffer = bytearray()
        self._headers: list[tuple[str, str]] = []
        self._in_follows = False

    def feed(self, data: bytes) -> list[AmiMessage]:
        """Add ``data``; return the messages it completed, in order."""
        self._buffer += data
        messages: list[AmiMessage] = []
        start = 0
        buffer = self._buffer
        while True:
            if self.banner is not None and not self._headers and not self._in_follows:
                # Between messages: take a whole well-formed message at once (the common case).
                message, start = self._whole_message(buffer, start)
                if message is not None:
                    messages.append(message)
                    continue
            end = buffer.find(b"\n", start)
            if end < 0:
                break
            raw = bytes(buffer[start:end])
            start = end + 1
            message = self._line(raw[:-1] if raw.endswith(b"\r") else raw)
            if message is not None:
                messages.append(message)
        del buffer[:start]
        return messages

    def _whole_message(self, buffer: bytearray, start: int) -> tuple[AmiMessage | None, int]:
        """The message starting at ``start`` if it is complete and plain ``Name: value`` lines ended by
        CRLF; else None (the line-by-line path handles it: partial, bare LF, Follows, odd lines)."""
        end = buffer.find(b"\r\n\r\n", start)
        if end < 0 or end == start:
            return None, start
        text = buffer[start : end + 2].decode("utf-8", errors="replace")  # each line with its CRLF
        lines = text.count("\r\n")
        # No bare CR or LF: then each match of _HEADER_LINE is one whole line (a line's first ':'
        # ends the name, one space after it is dropped), and a line without ':' has no match.
        if text.count("\r") != lines or text.count("\n") != lines:
            return None, start
        headers = _HEADER_LINE.findall(text)
        if len(headers) != lines or ("Follows" in text and ("Response", "Follows") in headers):
            return None, start  # a line that is no header (the line path keeps it), or Follows
        return AmiMessage(headers), end + 4

    @property
    def pending(self) -> bool:
        """True when a partial message or line is buffered (e.g. the peer closed mid-message)."""
        return bool(self._buffer) or bool(self._headers)

    def _line(self, raw: bytes) -> AmiMessage | None:
        # AMI is ASCII in practice; caller names may hold anything, so never fail on bytes.
        line = raw.decode("utf-8", errors="replace")
        if self._in_follows:
            return self._follows_line(line)
        if not line:
            if not self._headers:
                return None  # stray blank line between messages
            message = AmiMessage(self._headers)
            self._headers = []
            return message
        if self.banner is None and not self._headers and line.startswith(BANNER_PREFIX):
            self.banner = line
            return None
        name, sep, value = line.partition(":")
        if not sep:
            # Not a header line; keep it rather than drop data silently.
            self._headers.append(("Output", line))
            return None
        value = value[1:] if value.startswith(" ") else value
        self._headers.append((name, value))
        if name == "Response" and value == "Follows":
            self._in_follows = True
        return None

    def _follows_line(self, line: str) -> AmiMessage | None:
        # Legacy "Response: Follows": headers (ActionID, Privilege) then raw output lines.
        if line.endswith(_END_COMMAND):
            text = line[: -len(_END_COMMAND)]
            if text:
                self._headers.append(("Output", text))
            self._in_follows = False
            return None
        name, sep, value = line.partition(": ")
        if sep and name in ("Privilege", "ActionID") and not any(k == "Output" for k, _ in self._headers):
            self._headers.append((name, value))
        else:
            self._headers.append(("Output", line))
        return None


def encode_message(headers: Mapping[str, str] | Iterable[tuple[str, str]]) -> bytes:
    """Encode headers as one AMI message (``\\r\\n`` lines, blank-line terminated)."""
    # An AmiMessage is a Mapping of first values: encode all its headers, repeats included.
    if isinstance(headers, AmiMessage):
        pairs: Iterable[tuple[str, str]] = headers.headers
    elif isinstance(headers, Mapping):
        pairs = headers.items()
    else:
        pairs = headers
    out = []
    for name, value in pairs:
        if "\r" in value or "\n" in value or "\r" in name or "\n" in name:
            # A newline would end the header (or the message) early: header injection.
            raise ValueError(f"AMI header {name!r} contains a line break")
        out.append(f"{name}: {value}\r\n")
    out.append("\r\n")
    return "".join(out).encode()


def encode_action(action: str, headers: Mapping[str, str] | Iterable[tuple[str, str]] = ()) -> bytes:
    """Encode an action: ``Action: <action>`` followed by ``headers`` (repeat names via pairs)."""
    pairs = list(headers.items()) if isinstance(headers, Mapping) else list(headers)
    return encode_message([("Action", action), *pairs])


def banner_line(version: str = "9.0.0") -> bytes:
    """The greeting a server sends on connect (for fake servers)."""
    return f"{BANNER_PREFIX}{version}\r\n".encode()

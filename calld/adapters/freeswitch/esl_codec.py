"""FreeSWITCH Event Socket (ESL) codec: an incremental frame parser and command encoders.

Pure, no I/O. Framing as observed on FreeSWITCH 1.10.12 (tests/data/freeswitch/README.md):
a frame is ``Name: value`` header lines ended by an empty line, followed by exactly
``Content-Length`` body bytes when that header is present. Socket reads split frames anywhere,
so ``EslParser.feed`` accepts arbitrary chunks and returns only complete frames.

Event bodies are decoded lazily (``Frame.event()``), so a reader that only needs replies, or
throws events away, does not pay for decoding them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Container, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import unquote

import msgspec

CT_AUTH_REQUEST: Final = "auth/request"
CT_COMMAND_REPLY: Final = "command/reply"
CT_API_RESPONSE: Final = "api/response"
CT_EVENT_PLAIN: Final = "text/event-plain"
CT_EVENT_JSON: Final = "text/event-json"
CT_DISCONNECT_NOTICE: Final = "text/disconnect-notice"

EVENT_CONTENT_TYPES: Final = frozenset({CT_EVENT_PLAIN, CT_EVENT_JSON})

# Key under which an event's own body (BACKGROUND_JOB result, sendevent payload) is returned;
# the same key FreeSWITCH uses in text/event-json, so both formats give the same dict.
BODY_KEY: Final = "_body"

# The largest frame we accept. The biggest seen in the captures is ~20 KB (an event with SDP);
# a corrupt Content-Length must not make us buffer without bound.
DEFAULT_MAX_FRAME_BYTES: Final = 16 * 1024 * 1024


class EslProtocolError(Exception):
    """The byte stream is not valid ESL (bad Content-Length, oversized frame, bad event body)."""


@dataclass(frozen=True, slots=True)
class Frame:
    """One ESL frame: its outer headers and its body (``b""`` when it has none)."""

    headers: Mapping[str, str]
    body: bytes = b""

    @property
    def content_type(self) -> str:
        return self.headers.get("Content-Type", "")

    @property
    def is_event(self) -> bool:
        return self.headers.get("Content-Type") in EVENT_CONTENT_TYPES

    @property
    def reply_text(self) -> str:
        """``Reply-Text`` of a command/reply (``+OK ...`` / ``-ERR ...``), ``""`` if absent."""
        return self.headers.get("Reply-Text", "")

    @property
    def text(self) -> str:
        """The body as text (api/response result, disconnect notice)."""
        return self.body.decode("utf-8", "replace")

    def event(self) -> dict[str, str]:
        """The event carried by a text/event-plain or text/event-json frame, as a flat dict."""
        return decode_event(self)


class EslParser:
    """Incremental ESL frame parser: feed it byte chunks as they arrive, get whole frames back."""

    __slots__ = ("_buf", "_max", "_pending", "_scan")

    def __init__(self, max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES) -> None:
        self._buf = bytearray()  # unconsumed bytes; always starts at a frame boundary
        self._scan = 0  # where to resume looking for the end of the header block
        # (headers, body start, body end) of a frame whose body has not fully arrived yet.
        self._pending: tuple[dict[str, str], int, int] | None = None
        self._max = max_frame_bytes

    @property
    def buffered(self) -> int:
        """Bytes received but not yet returned as a frame (a partial frame)."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[Frame]:
        """Add ``data`` (any chunk of the stream) and return the frames it completed, in order."""
        buf = self._buf
        buf += data
        size = len(buf)
        frames: list[Frame] = []
        pos = 0
        while True:
            if self._pending is not None:
                headers, body_start, body_end = self._pending
                if body_end > size:
                    break
                self._pending = None
            else:
                # Tolerate stray blank lines between frames: FreeSWITCH sends none, but one
                # must not be taken for an empty header block.
                while pos < size and buf[pos] == 0x0A:
                    pos += 1
                if pos >= size:
                    break
                event_head = _EVENT_HEAD.match(buf, pos)
                if event_head is not None:
                    # The header block of (nearly) every event frame, taken in one match.
                    headers = {"Content-Length": event_head[1].decode(), "Content-Type": _TYPES[event_head[2]]}
                    body_start = event_head.end()
                    body_end = body_start + _content_length(headers, self._max)
                    if body_end > size:
                        self._pending = (headers, body_start, body_end)
                        break
                    frames.append(Frame(headers, bytes(buf[body_start:body_end])))
                    pos = self._scan = body_end
                    continue
                head_end = buf.find(b"\n\n", max(self._scan, pos))
                if head_end < 0:
                    # Resume the search here next time (one byte back: the "\n\n" may straddle
                    # two chunks), so that feeding byte by byte stays linear.
                    self._scan = max(pos, size - 1)
                    if size - pos > self._max:
                        raise EslProtocolError(f"header block longer than {self._max} bytes")
                    break
                headers = _parse_outer_headers(buf[pos:head_end])
                body_start = head_end + 2
                body_end = body_start + _content_length(headers, self._max)
                if body_end > size:
                    self._pending = (headers, body_start, body_end)
                    break
            frames.append(Frame(headers, bytes(buf[body_start:body_end]) if body_end > body_start else b""))
            pos = self._scan = body_end
        if pos:
            del buf[:pos]
            self._scan = max(0, self._scan - pos)
            if self._pending is not None:
                headers, body_start, body_end = self._pending
                self._pending = (headers, body_start - pos, body_end - pos)
        return frames


# How FreeSWITCH frames an event: exactly these two outer headers (the slow path gives the same dict).
_EVENT_HEAD: Final = re.compile(rb"Content-Length: ([0-9]{1,12})\nContent-Type: (text/event-json|text/event-plain)\n\n")
_TYPES: Final = {b"text/event-json": CT_EVENT_JSON, b"text/event-plain": CT_EVENT_PLAIN}


def _content_length(headers: Mapping[str, str], limit: int) -> int:
    text = headers.get("Content-Length")
    if text is None:
        return 0
    try:
        length = int(text)
    except ValueError:
        raise EslProtocolError(f"bad Content-Length {text!r}") from None
    if not 0 <= length <= limit:
        raise EslProtocolError(f"Content-Length {length} out of range")
    return length


def _parse_outer_headers(block: bytes | bytearray) -> dict[str, str]:
    # Outer headers are plain ASCII and never URL-encoded; lines without ": " are ignored.
    headers: dict[str, str] = {}
    for line in block.decode("utf-8", "replace").split("\n"):
        name, sep, value = line.partition(": ")
        if sep:
            headers[name] = value
        elif line.endswith(":"):
            headers[line[:-1]] = ""
    return headers


def decode_event(frame: Frame) -> dict[str, str]:
    """Flat ``{header: value}`` of an event frame; its body, if any, under ``"_body"``."""
    content_type = frame.headers.get("Content-Type")
    if content_type == CT_EVENT_PLAIN:
        return decode_plain_event(frame.body)
    if content_type == CT_EVENT_JSON:
        return decode_json_event(frame.body)
    raise EslProtocolError(f"not an event frame: {content_type!r}")


_JSON_NAME_FIRST: Final = b'{"Event-Name":"'
_JSON_NAME_KEY: Final = b'"Event-Name"'
_PLAIN_NAME_FIRST: Final = b"Event-Name: "
_PLAIN_NAME_LINE: Final = b"\nEvent-Name:"


def not_wanted(frame: Frame, wanted: Container[str]) -> bool:
    """True if ``frame`` is an event whose ``Event-Name`` is certainly not in ``wanted``: read off
    the body without decoding it (~1 us against ~4 us for decoding a j_load json event).

    FreeSWITCH writes ``Event-Name`` first (CUSTOM events excepted), so a reader that throws most
    events away by name can skip decoding them. Only the plain case is taken: the name first, no
    escapes in the body, and no other ``Event-Name`` (decoding keeps the last of repeated names).
    Otherwise False: decode to know. A wanted name costs no more than a prefix test. The rest of a
    skipped body is not checked, so whether it would have decoded is not known.
    """
    body = frame.body
    content_type = frame.headers.get("Content-Type")
    if content_type == CT_EVENT_JSON:
        if not body.startswith(_JSON_NAME_FIRST):
            return False
        start = len(_JSON_NAME_FIRST)
        end = body.find(b'"', start)
        if end < 0 or _maybe_wanted(body[start:end], wanted):
            return False
        # With no backslash in the body (so no escaped key, and no '"' inside a string), every
        # other '"Event-Name"' would be a repeated key, or the body not JSON: decoding must tell.
        return b"\\" not in body and body.find(_JSON_NAME_KEY, end) < 0
    if content_type == CT_EVENT_PLAIN:
        if not body.startswith(_PLAIN_NAME_FIRST):
            return False
        # The header block as decode_plain_event takes it; values are percent-encoded there.
        head_end = body.find(b"\n\n")
        if head_end < 0:
            head_end = len(body.rstrip(b"\n"))
        start = len(_PLAIN_NAME_FIRST)
        end = body.find(b"\n", start, head_end)
        if end < 0:
            end = head_end
        if b"%" in body[start:end] or _maybe_wanted(body[start:end], wanted):
            return False
        return body.find(_PLAIN_NAME_LINE, end, head_end) < 0
    return False


def _maybe_wanted(name: bytes, wanted: Container[str]) -> bool:
    try:
        return name.decode() in wanted
    except UnicodeDecodeError:
        return True  # decoding will say what it is


def decode_plain_event(body: bytes) -> dict[str, str]:
    """Decode a text/event-plain body: percent-encoded header block, optional inner body."""
    head_end = body.find(b"\n\n")
    if head_end < 0:
        head_end = len(body.rstrip(b"\n"))
    text = body[:head_end].decode("utf-8", "replace")
    # Fast path, all in C: values are percent-encoded, so neither ": " nor "\n" can occur in one;
    # turning line breaks into ": " gives an alternating name/value list. Checked by counting.
    parts = text.replace("\n", ": ").split(": ")
    if len(parts) == 2 * (text.count("\n") + 1):
        names = parts[0::2]
        values = parts[1::2]
    else:
        names, values = _split_header_lines(text)
    if "%" in text:
        # Percent-decoding, not form decoding: FreeSWITCH encodes '+' as %2B and leaves a literal
        # '+' alone. One unquote() call over all values (NUL-joined) is ~2x faster than one per
        # value; a value that decodes to a NUL would break the split, so then go one by one.
        decoded = unquote("\x00".join(values)).split("\x00")
        values = decoded if len(decoded) == len(values) else [unquote(value) for value in values]
    event = dict(zip(names, values, strict=True))
    length_text = event.get("Content-Length")
    if length_text is not None:
        try:
            length = int(length_text)
        except ValueError:
            raise EslProtocolError(f"bad inner Content-Length {length_text!r}") from None
        start = head_end + 2
        event[BODY_KEY] = body[start : start + length].decode("utf-8", "replace")
    return event


def _split_header_lines(text: str) -> tuple[list[str], list[str]]:
    names: list[str] = []
    values: list[str] = []
    for line in text.split("\n"):
        name, sep, value = line.partition(": ")
        if not sep:
            if not line.endswith(":"):
                continue  # not a header line; FreeSWITCH never sends one
            name = line[:-1]
        names.append(name)
        values.append(value)
    return names, values


# Stateless and immutable, like a compiled pattern: one for all connections.
_STR_MAP: Final = msgspec.json.Decoder(dict[str, str])


def decode_json_event(body: bytes) -> dict[str, str]:
    """Decode a text/event-json body. Values are already plain text; the body is ``_body``."""
    # msgspec's typed decoder reads an object of strings (every event in practice) ~4x faster than
    # json.loads and checks the types as it goes; orjson plus a type check was 30 % slower. Its
    # strings are json's strings; anything else (arrays, numbers, lone surrogate escapes, a byte
    # order mark, invalid UTF-8) goes to json, so every body decodes as json.loads decodes it.
    try:
        return _STR_MAP.decode(body)
    except (msgspec.DecodeError, ValueError):
        pass
    try:
        obj: Any = json.loads(body)
    except ValueError as exc:
        raise EslProtocolError(f"bad JSON event: {exc}") from None
    if not isinstance(obj, dict):
        raise EslProtocolError("JSON event is not an object")
    for name, value in obj.items():
        if type(value) is not str:
            # FreeSWITCH serialises array headers as JSON arrays; give them the plain
            # format's "ARRAY::a|:b" spelling so both formats decode to the same dict.
            obj[name] = _json_value_as_plain(value)
    return obj


def _json_value_as_plain(value: Any) -> str:
    if isinstance(value, list):
        return "ARRAY::" + "|:".join(_json_value_as_plain(item) for item in value)
    if isinstance(value, str):
        return value
    return json.dumps(value)


def iter_events(frames: Iterable[Frame]) -> list[dict[str, str]]:
    """The decoded events among ``frames``, in order (other frames skipped)."""
    return [decode_event(frame) for frame in frames if frame.is_event]


# ----------------------------------------------------------------------------- commands
# Every command is one or more lines ended by an empty line. Arguments must not contain a
# newline: it would end the command early and let the rest be read as another command.


def _command(*lines: str) -> bytes:
    for line in lines:
        if "\n" in line or "\r" in line:
            raise ValueError(f"ESL command argument contains a line break: {line!r}")
    return ("\n".join(lines) + "\n\n").encode("utf-8")


def encode_auth(password: str) -> bytes:
    """``auth <password>``: the answer to ``auth/request``."""
    return _command(f"auth {password}")


def encode_event_subscription(event_format: str, names: Iterable[str] = ("ALL",)) -> bytes:
    """``event plain|json <names>``: subscribe to events (``CUSTOM`` takes subclasses after it)."""
    if event_format not in ("plain", "json"):
        raise ValueError(f"event format must be plain or json, not {event_format!r}")
    joined = " ".join(names)
    if not joined:
        raise ValueError("no event names given")
    return _command(f"event {event_format} {joined}")


def encode_api(command: str) -> bytes:
    """``api <command>``: run synchronously; the result comes back as api/response."""
    return _command(f"api {command}")


def encode_bgapi(command: str, job_uuid: str | None = None) -> bytes:
    """``bgapi <command>``: run in the background; the result arrives as a BACKGROUND_JOB event.

    With ``job_uuid`` the client chooses the Job-UUID (sent as a header line), so it can match
    the BACKGROUND_JOB even before the command/reply arrives.
    """
    if job_uuid is None:
        return _command(f"bgapi {command}")
    return _command(f"bgapi {command}", f"Job-UUID: {job_uuid}")


def encode_filter(header: str, value: str) -> bytes:
    """``filter <header> <value>``: only deliver events whose header has that value."""
    return _command(f"filter {header} {value}")


def encode_filter_delete(header: str, value: str | None = None) -> bytes:
    """``filter delete <header> [<value>]``: remove a filter (all filters on that header without value)."""
    return _command(f"filter delete {header}" if value is None else f"filter delete {header} {value}")


def encode_linger(seconds: int | None = None) -> bytes:
    """``linger [seconds]``: keep delivering a channel's events after it hangs up (outbound mode)."""
    return _command("linger" if seconds is None else f"linger {int(seconds)}")


def encode_execute(uuid: str, app: str, arg: str) -> bytes:
    """``sendmsg <uuid>`` executing dialplan application ``app`` with ``arg`` on that channel
    (answered by a command/reply; the application runs in the channel's own thread)."""
    return _command(f"sendmsg {uuid}", "call-command: execute", f"execute-app-name: {app}", f"execute-app-arg: {arg}")


def encode_exit() -> bytes:
    """``exit``: FreeSWITCH replies ``+OK bye`` then sends a disconnect-notice and closes."""
    return _command("exit")

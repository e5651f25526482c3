"""Recording media over real HTTP on both databases: a real WAV file served with Range requests
(checked byte for byte), validators, content types, redirects, no way out of the recording
directories, and deleting recordings one by one and by filter."""

from __future__ import annotations

import io
import os
import struct
import uuid
import wave
from pathlib import Path
from typing import Any

import pytest

from calld.config import CallsConfig, Config, RecordingsConfig
from calld.domain.vocabulary import RecordingStatus
from calld.service.recording_files import RecordingFiles
from calld.storage.database import Database
from calld.storage.models import CallRecording
from tests.support import AppClient, SettableClock, webhooks_config

BASE = "/api/call-logs/"
RECORDING = "/api/webhooks/recording/"


@pytest.fixture
def rec_dir(tmp_path: Path) -> Path:
    path = tmp_path / "recordings"
    path.mkdir()
    return path


@pytest.fixture
def config(rec_dir: Path) -> Config:
    return Config(
        calls=CallsConfig(timezone="UTC", default_region="US"),
        webhooks=webhooks_config(),
        recordings=RecordingsConfig(directories=(str(rec_dir),)),
    )


@pytest.fixture
def api(signed_webhook_api: AppClient) -> AppClient:
    return signed_webhook_api


def wav_bytes(seconds: float = 1.0, rate: int = 8000) -> bytes:
    """A real 16-bit mono PCM WAV: a rising sawtooth, so every byte position differs from its neighbours."""
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"".join(struct.pack("<h", (i * 37) % 65536 - 32768) for i in range(int(seconds * rate))))
    return out.getvalue()


async def _json(resp: Any, status: int) -> Any:
    body = await resp.json()
    assert resp.status == status, body
    return body


async def recorded_call(api: AppClient, clock: SettableClock, **recording: Any) -> tuple[str, str]:
    clock.advance(60)
    body = {"direction": "inbound", "caller_number": "+14155550100", "recipient_number": "1001"}
    call_id = (await _json(await api.post(BASE, json=body), 201))["id"]
    rec = await _json(await api.post(RECORDING, json={"call_id": call_id, "status": "completed", **recording}), 200)
    return call_id, rec["id"]


def media(call_id: str, rec_id: str) -> str:
    return f"{BASE}{call_id}/recordings/{rec_id}/media/"


async def test_a_real_wav_is_served_with_ranges_byte_for_byte(
    api: AppClient, clock: SettableClock, rec_dir: Path
) -> None:
    data = wav_bytes()
    path = rec_dir / "call-1.wav"
    path.write_bytes(data)
    size = len(data)
    call_id, rec_id = await recorded_call(api, clock, local_path=str(path), format="wav")
    url = media(call_id, rec_id)

    whole = await api.get(url)
    assert whole.status == 200
    assert await whole.read() == data
    assert whole.headers["Content-Type"] == "audio/wav"
    assert whole.headers["Accept-Ranges"] == "bytes"
    assert int(whole.headers["Content-Length"]) == size
    etag, modified = whole.headers["ETag"], whole.headers["Last-Modified"]
    assert etag.startswith('"') and modified.endswith("GMT")
    with wave.open(io.BytesIO(await whole.read())) as w:  # still a WAV a player opens
        assert (w.getframerate(), w.getnframes()) == (8000, 8000)

    for header, first, last in (
        ("bytes=0-43", 0, 43),  # the RIFF header
        ("bytes=44-1043", 44, 1043),
        ("bytes=1000-", 1000, size - 1),
        ("bytes=-500", size - 500, size - 1),
        (f"bytes=15000-{size + 100}", 15000, size - 1),
    ):
        part = await api.get(url, headers={"Range": header})
        assert part.status == 206, header
        assert await part.read() == data[first : last + 1], header
        assert part.headers["Content-Range"] == f"bytes {first}-{last}/{size}"
        assert int(part.headers["Content-Length"]) == last - first + 1

    for header in (f"bytes={size}-", f"bytes={size + 10}-{size + 20}"):
        refused = await api.get(url, headers={"Range": header})
        assert refused.status == 416, header
        assert refused.headers["Content-Range"] == f"bytes */{size}"

    assert (await api.get(url, headers={"If-None-Match": etag})).status == 304
    assert (await api.get(url, headers={"If-Modified-Since": modified})).status == 304
    same = await api.get(url, headers={"Range": "bytes=0-9", "If-Range": etag})
    assert same.status == 206 and await same.read() == data[:10]
    # The file changed since the client's copy: If-Range with its old tag gets the whole new file.
    changed = wav_bytes(0.5)
    path.write_bytes(changed)
    os.utime(path, ns=(1_700_000_000_000_000_000, 1_700_000_000_000_000_000))
    fresh = await api.get(url, headers={"Range": "bytes=0-9", "If-Range": etag})
    assert fresh.status == 200 and await fresh.read() == changed
    assert (await api.head(url)).status == 200
    redirected = await api.get(url.rstrip("/"), allow_redirects=False)
    assert redirected.status == 308 and redirected.headers["Location"].endswith(url)


@pytest.mark.parametrize(
    ("name", "fmt", "expected"),
    [
        ("a.mp3", "mp3", "audio/mpeg"),
        ("a.ogg", "ogg", "audio/ogg"),
        ("a.opus", "opus", 'audio/ogg; codecs="opus"'),
        ("a.wav", None, "audio/wav"),
        ("a.bin", None, "application/octet-stream"),
    ],
)
async def test_content_type_follows_the_format(
    api: AppClient, clock: SettableClock, rec_dir: Path, name: str, fmt: str | None, expected: str
) -> None:
    (rec_dir / name).write_bytes(b"\x00" * 64)
    extra = {"format": fmt} if fmt else {}
    call_id, rec_id = await recorded_call(api, clock, local_path=name, **extra)  # relative: in the directory
    resp = await api.get(media(call_id, rec_id))
    assert resp.status == 200 and resp.headers["Content-Type"] == expected


async def test_only_files_inside_the_recording_directories(
    api: AppClient, clock: SettableClock, rec_dir: Path, tmp_path: Path
) -> None:
    secret = tmp_path / "secret.wav"
    secret.write_bytes(b"not yours")
    (rec_dir / "link.wav").symlink_to(secret)
    (rec_dir / "sub").mkdir()
    for local_path in (
        str(secret),
        str(rec_dir / ".." / "secret.wav"),
        "../secret.wav",
        "sub/../../secret.wav",
        str(rec_dir / "link.wav"),
        "link.wav",
        str(rec_dir),
        "/etc/passwd",
    ):
        call_id, rec_id = await recorded_call(api, clock, local_path=local_path)
        resp = await api.get(media(call_id, rec_id), allow_redirects=False)
        body = await resp.json()
        assert resp.status == 404, (local_path, body)
        assert "recording_id" in body["detail"]
    # Elsewhere with a URL: redirected there; a file that is not on this host likewise.
    call_id, rec_id = await recorded_call(
        api, clock, local_path=str(secret), file_url="https://recordings.example.com/r/1.wav"
    )
    resp = await api.get(media(call_id, rec_id), allow_redirects=False)
    assert resp.status == 302 and resp.headers["Location"] == "https://recordings.example.com/r/1.wav"
    call_id, rec_id = await recorded_call(
        api, clock, local_path="gone.wav", file_url="https://recordings.example.com/r/2.wav"
    )
    resp = await api.get(media(call_id, rec_id), allow_redirects=False)
    assert resp.status == 302 and resp.headers["Location"] == "https://recordings.example.com/r/2.wav"
    # Another call's recording id, or a malformed one, is not found.
    other, _ = await recorded_call(api, clock)
    assert (await api.get(media(other, rec_id))).status == 404
    assert (await api.get(media(other, "nope"))).status == 404


async def test_delete_removes_the_file_and_marks_the_recording(
    api: AppClient, clock: SettableClock, rec_dir: Path, tmp_path: Path
) -> None:
    path = rec_dir / "call.wav"
    path.write_bytes(wav_bytes(0.1))
    call_id, rec_id = await recorded_call(api, clock, local_path=str(path), transcript="call me back")
    one = f"{BASE}{call_id}/recordings/{rec_id}/"
    deleted = await _json(await api.delete(one), 200)
    assert deleted["status"] == "deleted" and deleted["file"] == "removed" and deleted["transcript"] is None
    assert not path.exists()
    assert (await api.get(media(call_id, rec_id))).status == 404
    detail = await _json(await api.get(f"{BASE}{call_id}/"), 200)
    assert detail["recordings"][0]["status"] == "deleted"
    assert (await _json(await api.get(f"{BASE}?has_recording=true"), 200))["count"] == 0
    assert (await _json(await api.delete(one), 200))["file"] == "already_deleted"
    # A file outside the directories is never removed; the recording is still deleted.
    outside = tmp_path / "outside.wav"
    outside.write_bytes(b"keep")
    call_id, rec_id = await recorded_call(api, clock, local_path=str(outside))
    assert (await _json(await api.delete(f"{BASE}{call_id}/recordings/{rec_id}/"), 200))["file"] == "outside"
    assert outside.read_bytes() == b"keep"
    # One being written is refused.
    clock.advance(60)
    body = {"direction": "inbound", "caller_number": "+14155550100", "recipient_number": "1001"}
    live = (await _json(await api.post(BASE, json=body), 201))["id"]
    rec = await _json(await api.post(RECORDING, json={"call_id": live, "status": "recording"}), 200)
    refused = await _json(await api.delete(f"{BASE}{live}/recordings/{rec['id']}/"), 409)
    assert "recording_id" in refused["detail"]


async def test_deleting_a_call_removes_its_recordings_files(
    api: AppClient, db: Database, clock: SettableClock, rec_dir: Path, tmp_path: Path
) -> None:
    done, written = rec_dir / "done.wav", rec_dir / "written.wav"
    outside = tmp_path / "outside.wav"
    for path in (done, written, outside):
        path.write_bytes(wav_bytes(0.05))
    call_id, _ = await recorded_call(api, clock, local_path=str(done))
    # A second recording still being written, and one whose file lies outside the directories.
    async with db.write() as session:
        for status, path in ((RecordingStatus.RECORDING, "written.wav"), (RecordingStatus.COMPLETED, str(outside))):
            session.add(CallRecording(call_id=uuid.UUID(call_id), status=status, local_path=path))
    kept_id, _ = await recorded_call(api, clock, local_path=str(rec_dir / "other.wav"))
    (rec_dir / "other.wav").write_bytes(b"other call")

    assert (await api.delete(f"{BASE}{call_id}/")).status == 204
    assert not done.exists() and not written.exists()
    assert outside.exists()  # never touched: not calld's to remove
    assert (await api.get(f"{BASE}{call_id}/")).status == 404
    assert (rec_dir / "other.wav").read_bytes() == b"other call"
    assert (await _json(await api.get(f"{BASE}{kept_id}/"), 200))["recording"]["status"] == "completed"

    # A file that cannot be removed keeps the call as it was: nothing is lost half-way.
    stuck = rec_dir / "stuck.wav"
    stuck.mkdir()  # unlink() of a directory fails, whoever runs the test
    stuck_call, _ = await recorded_call(api, clock, local_path=str(stuck))
    refused = await _json(await api.delete(f"{BASE}{stuck_call}/"), 409)
    assert "recording_id" in refused["detail"]
    detail = await _json(await api.get(f"{BASE}{stuck_call}/"), 200)
    assert detail["recording"]["status"] == "completed"


async def test_bulk_delete_by_filter(api: AppClient, clock: SettableClock, rec_dir: Path) -> None:
    files = []
    for n in range(3):
        path = rec_dir / f"r{n}.wav"
        path.write_bytes(wav_bytes(0.05))
        files.append(path)
        await recorded_call(api, clock, local_path=path.name)
    cutoff = clock.now.isoformat().replace("+00:00", "Z")
    clock.advance(60)
    await recorded_call(api, clock, local_path=str(files[2]))  # a second recording of r2, newer
    problem = await _json(await api.delete(f"{BASE}recordings/"), 422)
    assert "filter" in problem["detail"]
    assert "number" in (await _json(await api.delete(f"{BASE}recordings/?number=*1"), 422))["detail"]
    dry = await _json(await api.delete(f"{BASE}recordings/?started_before={cutoff}&dry_run=true"), 200)
    assert dry["recordings"] == 2 and dry["dry_run"] is True and all(f.exists() for f in files)
    done = await _json(await api.delete(f"{BASE}recordings/?started_before={cutoff}"), 200)
    assert done == {"recordings": 2, "removed": 2, "missing": 0, "outside": 0, "none": 0, "dry_run": False}
    assert [f.exists() for f in files] == [False, False, True]
    # The call started at the cutoff and the newer one keep theirs.
    assert (await _json(await api.get(f"{BASE}?has_recording=true"), 200))["count"] == 2
    again = await _json(await api.delete(f"{BASE}recordings/?started_before={cutoff}"), 200)
    assert again["recordings"] == 0


def test_a_path_on_the_switch_is_found_under_a_mount_of_its_directory(db: Database, rec_dir: Path) -> None:
    (rec_dir / "sub").mkdir()
    (rec_dir / "sub" / "a.wav").write_bytes(b"RIFF")
    files = RecordingFiles(db, (str(rec_dir),), "/var/spool/asterisk/monitor")
    assert files.inside("/var/spool/asterisk/monitor/sub/a.wav") == (rec_dir / "sub" / "a.wav").resolve()
    assert files.inside("sub/a.wav") == (rec_dir / "sub" / "a.wav").resolve()
    for escaping in (
        "/var/spool/asterisk/monitor/../../../../etc/passwd",
        "/var/spool/asterisk/monitor/..",
        "/var/spool/asterisk/monitorx/a.wav",
        "/var/spool/asterisk/monitor",
    ):
        assert files.inside(escaping) is None, escaping

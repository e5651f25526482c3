"""How a recording's row ends, and FreeSWITCH's RECORD_STOP figures, on plain data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from calld.adapters.freeswitch.story import recording_figures
from calld.domain.recording import FileFacts, finished_recording, implied_events
from calld.domain.vocabulary import CallStatus, EventType, RecordingStatus

T0 = datetime(2026, 11, 24, 9, 49, 59, tzinfo=UTC)


def test_the_switchs_figures_come_first_then_the_disk_then_the_times() -> None:
    stop = T0 + timedelta(seconds=4)
    switch = finished_recording({"file_size": 128044, "duration_seconds": 4.0}, FileFacts(1, 9.0), T0, stop)
    assert (switch.status, switch.file_size, switch.duration_seconds) == (RecordingStatus.COMPLETED, 128044, 4.0)
    disk = finished_recording({"path": "/x.wav"}, FileFacts(65324, 2.04), T0, stop)
    assert (disk.status, disk.file_size, disk.duration_seconds) == (RecordingStatus.COMPLETED, 65324, 2.04)
    # Neither: the length from the times, and the file is still to be confirmed by the recording webhook.
    times = finished_recording({}, None, T0, stop)
    assert (times.status, times.file_size, times.duration_seconds) == (RecordingStatus.PROCESSING, None, 4.0)
    unknown = finished_recording({"file_size": -1, "duration_seconds": True}, None, None, stop)
    assert (unknown.status, unknown.file_size, unknown.duration_seconds) == (RecordingStatus.PROCESSING, None, None)


def test_a_call_ending_while_recording_stops_the_recording_first() -> None:
    recording = CallStatus.RECORDING
    assert implied_events(recording, EventType.ENDED) == ((EventType.RECORDING_STOPPED, {"reason": "call_ended"}),)
    assert implied_events(recording, EventType.FAILED)[0][0] is EventType.RECORDING_STOPPED
    assert implied_events(CallStatus.ANSWERED, EventType.ENDED) == ()
    assert implied_events(CallStatus.TRANSFERRED, EventType.ENDED) == ()  # recording_stopped is illegal there
    assert implied_events(recording, EventType.HOLD) == ()


def test_record_stop_figures_are_taken_only_when_they_fit_the_recording() -> None:
    # The g_recording capture's second RECORD_STOP (2.04 s recording).
    stop = {"variable_record_ms": "2040", "variable_record_file_size": "65324", "variable_record_samples": "16320"}
    assert recording_figures(stop, T0, T0 + timedelta(seconds=2.04)) == {"duration_seconds": 2.04, "file_size": 65324}
    # The first recording's 4000 ms, still set on the channel, on a recording that ran 2 s: not this one's.
    sticky = {"variable_record_ms": "4000", "variable_record_file_size": "128044"}
    assert recording_figures(sticky, T0, T0 + timedelta(seconds=2)) == {}
    assert recording_figures({}, T0, T0 + timedelta(seconds=2)) == {}
    assert recording_figures({"variable_record_ms": "x"}, T0, T0) == {}
    assert recording_figures({"variable_record_ms": "1000"}, None, T0) == {"duration_seconds": 1.0}

"""Recording media and deletion: a recording's audio (HTTP Range, validators), deleting one
recording, and deleting the recordings of the calls a filter selects (admin)."""

from __future__ import annotations

from aiohttp import hdrs, web
from aiohttp.abc import AbstractStreamWriter

from calld.http.call_logs import call_filter_params, call_filter_query
from calld.http.context import services
from calld.http.errors import ApiError
from calld.http.routing import CALLS, Op, Routes
from calld.http.schema import BOOLEAN, query
from calld.http.validation import path_uuid
from calld.service.recording_files import Elsewhere

BASE = "/api/call-logs/"
MEDIA = BASE + "{id}/recordings/{recording_id}/media/"
ONE = BASE + "{id}/recordings/{recording_id}/"
BULK = BASE + "recordings/"

routes = Routes()


@routes.delete(
    BULK,
    Op(
        CALLS,
        "Delete the recordings of the calls a filter selects",
        {200: "RecordingsDeleted"},
        params=(
            *call_filter_params(),
            query("dry_run", BOOLEAN, "Only count what would be deleted (default false)."),
        ),
        description="Admin scope. Takes the call list's filters (at least one); each recording not being "
        "written is deleted as DELETE of one recording deletes it (file removed when it lies in a "
        "recording directory, row marked deleted, transcript cleared), in small transactions.",
    ),
)
async def delete_recordings(request: web.Request) -> web.Response:
    """DELETE /api/call-logs/recordings/?<filters> — bulk delete by filter."""
    svc = services(request)
    fields, flt = call_filter_query(request.query, svc.config.calls.default_region, svc.config.calls.zone, ("dry_run",))
    dry_run = fields.boolean("dry_run", default=False)
    if not any(key != "dry_run" for key in request.query):
        fields.fail("filter", "give at least one of the list's filters (started_before=... for everything older)")
    fields.done()
    if dry_run:
        counts = dict.fromkeys(("removed", "missing", "outside", "none"), 0)
        return web.json_response({"recordings": await svc.recordings.count_matching(flt), **counts, "dry_run": True})
    return web.json_response({**await svc.recordings.delete_matching(flt), "dry_run": False})


@routes.get(
    MEDIA,
    Op(
        CALLS,
        "A recording's audio",
        {200: None, 206: None, 302: None, 304: None, 416: None},
        description="The file from a recording directory on this host (`[recordings] directories`, by default "
        "the switch's recording_directory), with Range requests (206, Content-Range; 416 outside the file), "
        "ETag and Last-Modified (304 to If-None-Match / If-Modified-Since), If-Range, and a Content-Type by "
        "the recording's format (audio/wav, audio/mpeg, audio/ogg, Ogg Opus). A recording whose file is not "
        "here is redirected (302) to its external_url; without one it is 404, as is a deleted recording.",
    ),
)
async def recording_media(request: web.Request) -> web.StreamResponse:
    """GET /api/call-logs/{id}/recordings/{recording_id}/media/ — the recording's audio."""
    call_id = path_uuid(request.match_info["id"], "call log")
    recording_id = path_uuid(request.match_info["recording_id"], "recording")
    found = await services(request).recordings.media(call_id, recording_id)
    if isinstance(found, Elsewhere):
        raise web.HTTPFound(found.url)
    headers = {hdrs.CONTENT_TYPE: found.content_type, hdrs.CACHE_CONTROL: "private, no-cache"}
    if_range = request.headers.get(hdrs.IF_RANGE, "")
    if if_range.startswith(('"', "W/")) and hdrs.RANGE in request.headers:
        # aiohttp reads If-Range as a date only; an entity tag that is no longer the file's means
        # "the whole file" (RFC 9110 13.1.5), never a range of a changed file.
        try:
            stat = found.path.stat()
        except OSError:
            raise ApiError(404, "not found", {"recording_id": "the file is gone"}) from None
        if if_range != f'"{stat.st_mtime_ns:x}-{stat.st_size:x}"':
            return _WholeFile(found.path, headers=headers)
    return web.FileResponse(found.path, headers=headers)


class _WholeFile(web.FileResponse):
    """The whole file whatever Range asked (an If-Range that no longer holds)."""

    async def prepare(self, request: web.BaseRequest) -> AbstractStreamWriter | None:
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("range", "if-range")}
        return await super().prepare(request.clone(headers=headers))


@routes.delete(
    ONE,
    Op(
        CALLS,
        "Delete a recording: its file and transcript",
        {200: "RecordingDeleted"},
        errors={409: "the recording is still being written, or its file could not be removed"},
        description="Removes the file when it lies in a recording directory on this host and marks the "
        "recording deleted (its transcript cleared); `file` says what became of the file.",
    ),
)
async def delete_recording(request: web.Request) -> web.Response:
    """DELETE /api/call-logs/{id}/recordings/{recording_id}/ — remove the file, mark the row deleted."""
    call_id = path_uuid(request.match_info["id"], "call log")
    recording_id = path_uuid(request.match_info["recording_id"], "recording")
    return web.json_response(await services(request).recordings.delete(call_id, recording_id))

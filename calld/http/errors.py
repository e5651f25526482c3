"""Every error the API answers is JSON: ``{"error": ..., "code": ..., "detail": {field: message}}``.

``error`` is for people; ``code`` is stable for machines (``STATUS_CODES`` by default, or a more
precise one such as ``illegal_transition``); ``detail`` names each field and its problem.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import structlog
from aiohttp import web

from calld.adapters.port import CommandTimedOut, NoLeader, SwitchError, SwitchUnavailable
from calld.domain.errors import (
    AlreadyExists,
    BreaksARule,
    Conflict,
    IllegalTransition,
    InvalidValue,
    InvalidValues,
    NotFound,
)
from calld.http.context import SERVICES

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# What a 503 for an unreachable database asks clients to wait.
RETRY_AFTER_SECONDS = 5


# The machine-readable code of each status when no more precise one is given.
STATUS_CODES = {
    400: "malformed_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "body_too_large",
    415: "unsupported_media_type",
    422: "validation_failed",
    429: "too_many_requests",
    500: "internal_error",
    502: "switch_unavailable",
    503: "unavailable",
}


class ApiError(Exception):
    """An error answered to the client as it is."""

    def __init__(
        self,
        status: int,
        error: str,
        detail: Mapping[str, str] | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        code: str | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(error)
        self.status = status
        self.error = error
        self.code = code or STATUS_CODES.get(status, "error")
        self.detail = dict(detail or {})
        self.headers = dict(headers or {})
        self.extra = extra

    def response(self) -> web.Response:
        body: dict[str, Any] = {"error": self.error, "code": self.code, "detail": self.detail, **self.extra}
        return web.json_response(body, status=self.status, headers=self.headers or None)


def from_not_found(exc: NotFound) -> ApiError:
    return ApiError(404, f"{exc.what} not found", {exc.field: str(exc)})


def _from_http_exception(exc: web.HTTPException) -> ApiError:
    if exc.status == 413:
        return ApiError(413, "request body too large", {"body": exc.text or "too large"})
    if exc.status == 405:
        allowed = ", ".join(exc.headers.get("Allow", "").split(","))
        return ApiError(405, "method not allowed", {"method": f"this path takes {allowed}"}, headers={"Allow": allowed})
    if exc.status == 404:
        return ApiError(404, "not found", {"path": "no such endpoint"})
    return ApiError(exc.status, exc.reason or "error", {})


# What a switch's failure answers (status, error, code), the most specific class first.
_SWITCH_FAILURES: tuple[tuple[type[Exception], int, str, str | None], ...] = (
    (SwitchError, 409, "the switch refused the request", "switch_refused"),
    (NoLeader, 503, "no calld instance leads this call's switch", "no_leader"),
    (
        CommandTimedOut,
        504,
        "the calld instance connected to this call's switch did not answer in time",
        "command_timeout",
    ),
    (SwitchUnavailable, 502, "the switch is unavailable", None),
)


def _switch_failure(exc: SwitchError | SwitchUnavailable) -> ApiError:
    status, error, code = next((s, e, c) for kind, s, e, c in _SWITCH_FAILURES if isinstance(exc, kind))
    return ApiError(status, error, {"switch": str(exc)}, code=code)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn every failure into a JSON answer; only a bug in calld is a 500, and it is logged."""
    try:
        return await handler(request)
    except ApiError as exc:
        return exc.response()
    except IllegalTransition as exc:
        return ApiError(
            409,
            "illegal status transition",
            {"status": str(exc)},
            code="illegal_transition",
            current_status=exc.current.value,
            requested=exc.requested.value,
        ).response()
    except InvalidValue as exc:
        return ApiError(422, "invalid value", {exc.field: exc.message}, code="invalid_value").response()
    except InvalidValues as exc:
        return ApiError(422, "validation failed", exc.detail).response()
    except NotFound as exc:
        return from_not_found(exc).response()
    except (AlreadyExists, BreaksARule) as exc:
        structlog.get_logger("calld.http").info("integrity conflict", path=request.path, error=exc.reason)
        return _conflict(exc).response()
    except Conflict as exc:
        return _conflict(exc).response()
    except (SwitchError, SwitchUnavailable) as exc:
        return _switch_failure(exc).response()
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _from_http_exception(exc).response()
    except Exception as exc:
        db = request.app[SERVICES].db if SERVICES in request.app else None
        failure = db.note_failure(exc) if db is not None else None
        if failure == "damaged":
            structlog.get_logger("calld.http").error(
                "database damaged", path=request.path, error=db.damage if db else ""
            )
            return ApiError(
                503, "database damaged", {"database": "the database file is damaged"}, code="database_damaged"
            ).response()
        if failure == "unavailable":
            return ApiError(
                503,
                "database unavailable",
                {"database": "the database did not answer; retry later"},
                headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
                code="database_unavailable",
            ).response()
        return internal_error(request)


def _conflict(exc: Conflict) -> ApiError:
    error = ApiError(409, exc.message, exc.detail, code=exc.code)
    error.extra.update(exc.extra)
    return error


def internal_error(request: web.Request) -> web.Response:
    """A bug in calld: one log line with the traceback and a request id, and the id in the answer
    (``request_id``), so an operator finds the line a client reports. Nothing of the exception is shown."""
    request_id = secrets.token_hex(8)
    structlog.get_logger("calld.http").exception(
        "unhandled error", path=request.path, method=request.method, request_id=request_id
    )
    return ApiError(500, "internal error", request_id=request_id).response()


@web.middleware
async def last_resort_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The outermost middleware: whatever fails outside ``error_middleware`` (another middleware,
    say) is still answered in the API's error format, never as aiohttp's text/plain 500."""
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except Exception:
        return internal_error(request)


async def read_json(request: web.Request) -> Any:
    """The request body as JSON, or a 400 naming what is wrong with it."""
    raw = await request.read()
    if not raw.strip():
        raise ApiError(400, "malformed JSON", {"body": "the request body is empty; send a JSON object"})
    try:
        return json.loads(raw, parse_constant=_refuse_constant)
    except RecursionError:
        raise ApiError(400, "malformed JSON", {"body": "nested too deeply"}) from None
    except ValueError as exc:  # also JSONDecodeError, UnicodeDecodeError and over-long integers
        raise ApiError(400, "malformed JSON", {"body": str(exc)}) from exc


def _refuse_constant(name: str) -> Any:
    # Python's json accepts NaN and Infinity, which are not JSON and which PostgreSQL cannot store.
    raise ValueError(f"{name} is not valid JSON")


async def read_json_object(request: web.Request) -> dict[str, Any]:
    body = await read_json(request)
    if not isinstance(body, dict):
        raise ApiError(400, "malformed JSON", {"body": "must be a JSON object"})
    return body

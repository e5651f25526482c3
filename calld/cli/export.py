"""``calld export``: the calls ``GET /api/call-logs/export/`` would stream, written from the database.

It takes the API's filters under the same names (``--status``, ``--started-after``…), reads them with
the API's own parser (the same checks, the same messages) and writes the same bytes, to a file or to
standard output. No server needs to run: an operator can export from a stopped or backed-up database.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, BinaryIO

from multidict import MultiDict

from calld.config import Config
from calld.domain.call_filter import CallFilter
from calld.service.export import ExportFormat, Tally, export_chunks
from calld.storage.database import Database

# (option, API parameter, help); options that may repeat collect every value, as the API does.
_FILTERS = (
    ("--status", "status", "only calls in this status (repeat, or separate with commas)"),
    ("--direction", "direction", "only inbound or outbound calls (repeat, or separate with commas)"),
    ("--call-type", "call_type", "only calls of this type (repeat, or separate with commas)"),
    ("--number", "number", "only calls from or to this number"),
    ("--client", "client", "only calls of this client (its id)"),
    ("--started-after", "started_after", "calls started at or after this instant or date (calls.timezone)"),
    ("--started-before", "started_before", "calls started before this instant or date (calls.timezone)"),
    ("--ordering", "ordering", "the list's ordering (default -started_at)"),
)
_REPEATABLE = {"status", "direction", "call_type"}


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add the ``export`` command to ``sub`` (the main parser's sub-parsers)."""
    export = sub.add_parser("export", parents=[common], help="export calls as CSV or NDJSON (the API's export)")
    export.add_argument("--format", choices=[f.value for f in ExportFormat], default="csv", help="default csv")
    export.add_argument("--output", "-o", type=Path, help="file to write (default: standard output)")
    for option, param, text in _FILTERS:
        if param in _REPEATABLE:
            export.add_argument(option, dest=param, action="append", help=text)
        else:
            export.add_argument(option, dest=param, help=text)


def _query(args: argparse.Namespace) -> MultiDict[str]:
    query: MultiDict[str] = MultiDict(format=args.format)
    for _, param, _ in _FILTERS:
        value = getattr(args, param)
        for one in value if isinstance(value, list) else [value]:
            if one is not None:
                query.add(param, one)
    return query


async def run(config: Config, args: argparse.Namespace, out: BinaryIO | None = None) -> int:
    """Write the export ``args`` asks for; 0 on success, 2 for a bad option (said on stderr)."""
    # The API's own parser (imported here: other commands need not load the HTTP layer).
    from calld.http.call_logs import parse_export_query
    from calld.http.errors import ApiError

    try:
        flt, ordering, fmt = parse_export_query(_query(args), config.calls.default_region, config.calls.zone)
    except ApiError as exc:
        for name, problem in exc.detail.items():
            option = "--" + name.replace("_", "-")
            print(f"calld: export: {option}: {problem}", file=sys.stderr)
        return 2
    db = Database(config.database.url)
    try:
        await db.migrate()
        if args.output is not None:
            with args.output.open("wb") as file:
                count = await _write(db, flt, ordering, fmt, file)
        else:
            count = await _write(db, flt, ordering, fmt, out or sys.stdout.buffer)
    finally:
        await db.close()
    where = args.output if args.output is not None else "standard output"
    print(f"calld: exported {count} calls as {fmt.value} to {where}", file=sys.stderr)
    return 0


async def _write(db: Database, flt: CallFilter, ordering: str, fmt: ExportFormat, file: BinaryIO) -> int:
    tally = Tally()
    async for chunk in export_chunks(db, flt, ordering, fmt, tally=tally):
        file.write(chunk)
    file.flush()
    return tally.calls

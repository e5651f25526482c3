"""The OpenAPI schema vocabulary: small builders for the JSON Schema pieces operations and components use."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Any

from calld.http.pagination import DEFAULT_LIMIT, MAX_LIMIT, MAX_OFFSET

Schema = dict[str, Any]


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema: Schema) -> Schema:
    """``schema`` or null."""
    if "type" not in schema:
        return {"anyOf": [schema, {"type": "null"}]}
    types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
    out = {**schema, "type": [*types, "null"]}
    if "enum" in schema:
        out["enum"] = [*schema["enum"], None]
    return out


def string(max_length: int | None = None, *, min_length: int = 0, fmt: str | None = None, **extra: Any) -> Schema:
    schema: Schema = {"type": "string", **extra}
    if min_length:
        schema["minLength"] = min_length
    if max_length is not None:
        schema["maxLength"] = max_length
    if fmt is not None:
        schema["format"] = fmt
    return schema


def choice(values: Iterable[StrEnum | str], description: str | None = None) -> Schema:
    schema: Schema = {"type": "string", "enum": [str(v) for v in values]}
    if description:
        schema["description"] = description
    return schema


def integer(minimum: int | None = None, maximum: int | None = None, **extra: Any) -> Schema:
    schema: Schema = {"type": "integer", **extra}
    if minimum is not None:
        schema["minimum"] = minimum
    if maximum is not None:
        schema["maximum"] = maximum
    return schema


def number(minimum: float | None = None, maximum: float | None = None, **extra: Any) -> Schema:
    schema: Schema = {"type": "number", **extra}
    if minimum is not None:
        schema["minimum"] = minimum
    if maximum is not None:
        schema["maximum"] = maximum
    return schema


def array(items: Schema, max_items: int | None = None) -> Schema:
    schema: Schema = {"type": "array", "items": items}
    if max_items is not None:
        schema["maxItems"] = max_items
    return schema


def obj(properties: Mapping[str, Schema], required: Iterable[str] = (), *, description: str = "") -> Schema:
    """A closed object: a field the document does not name is an error in a request and a drift in a response."""
    schema: Schema = {"type": "object", "properties": dict(properties), "additionalProperties": False}
    if required:
        schema["required"] = list(required)
    if description:
        schema["description"] = description
    return schema


def response_object(properties: Mapping[str, Schema], *, description: str = "") -> Schema:
    """An object as calld answers it: every property is always there."""
    return obj(properties, properties.keys(), description=description)


UUID = string(fmt="uuid")


DATE_TIME = string(fmt="date-time")


BOOLEAN: Schema = {"type": "boolean"}


ANY_OBJECT: Schema = {"type": "object"}


PHONE = string(
    fmt="phone",
    description="A phone number in E.164 (+14155550123) or a PBX extension of 2 to 6 digits; national numbers "
    "are read in calls.default_region. Answers carry E.164 or the extension.",
)

PRESENTED_NUMBER = string(
    255,
    description="A number as presented (a caller ID may be withheld: anonymous, Restricted, *67, 0; or a SIP URI). "
    "Never refused over its content: calld stores the E.164 form where it can be derived (calls.default_region, "
    "calls.national_prefix), an extension as it is, 'anonymous' for a withheld caller, anything else as given; "
    "the presentation itself is kept in caller_number_raw / recipient_number_raw.",
)
STORED_NUMBER = string(
    32,
    description="The number calld stores and matches clients by: E.164 where it can be derived, an extension, "
    "'anonymous' for a withheld caller, otherwise as presented.",
)


def query(name: str, schema: Schema, description: str = "") -> Schema:
    param: Schema = {"name": name, "in": "query", "required": False, "schema": schema}
    if schema.get("type") == "array":
        param.update(style="form", explode=True)
    if description:
        param["description"] = description
    return param


PAGING = (
    query("limit", integer(1, MAX_LIMIT, default=DEFAULT_LIMIT), "Page size."),
    query("offset", integer(0, MAX_OFFSET, default=0), "How many to skip."),
)


ACTIVE = query("active", BOOLEAN, "Only active (true) or inactive (false) ones.")


def several(name: str, items: Schema, what: str) -> Schema:
    return query(name, array(items), f"{what}; repeat the parameter or separate values with commas.")


# A date-time filter also takes a plain date: the local midnight it begins.
DATE_OR_TIME: Schema = {"anyOf": [DATE_TIME, string(fmt="date")]}


_LOCAL_DAY = "(or a date: the midnight it begins in `calls.timezone`)"


def path_parameters(path: str) -> list[Schema]:
    names = re.findall(r"\{([^}]+)\}", path)
    return [{"name": n, "in": "path", "required": True, "schema": CONSOLE_FILE if n == "file" else UUID} for n in names]


# The web console's file names (calld.http.console): lower-case words and the file's type.
CONSOLE_FILE = string(pattern=r"^[a-z][a-z0-9_-]*\.(js|css|html|svg)$")


def json_content(schema: Schema) -> Schema:
    return {"application/json": {"schema": schema}}

"""An OpenAPI document as one self-contained HTML page (no scripts, no external assets: the machines
calld runs on often have no internet). Every operation with its parameters, body and responses,
then every schema as a table of its fields, linked from where it is used."""

from __future__ import annotations

from html import escape
from typing import Any

Schema = dict[str, Any]

_STYLE = """
body{font:15px/1.45 system-ui,sans-serif;max-width:72rem;margin:0 auto;padding:1rem 2rem;color:#1b1f24}
h1{margin-bottom:.2rem}h2{border-bottom:2px solid #d0d7de;padding-bottom:.2rem;margin-top:2.5rem}
nav ul{columns:2;padding-left:1.2rem}code{background:#f3f4f6;padding:0 .25rem;border-radius:3px}
section.op{border:1px solid #d0d7de;border-radius:6px;padding:.4rem 1rem;margin:1rem 0}
.method{display:inline-block;min-width:4.2rem;font-weight:700;color:#fff;border-radius:4px;text-align:center;
padding:0 .3rem;margin-right:.4rem}.get{background:#0969da}.post{background:#1a7f37}.patch{background:#9a6700}
.delete{background:#cf222e}.put{background:#8250df}table{border-collapse:collapse;width:100%;margin:.4rem 0}
th,td{border:1px solid #d0d7de;padding:.2rem .5rem;text-align:left;vertical-align:top}th{background:#f6f8fa}
.muted{color:#57606a}h3{margin:.6rem 0 .2rem;font-size:1rem}
"""


def render(spec: Schema) -> str:
    """The whole page for ``spec``."""
    info = spec.get("info", {})
    title = escape(str(info.get("title", "API")))
    parts = [
        f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{title} API</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>{title} API <span class=muted>{escape(str(info.get('version', '')))}</span></h1>",
        f"<p>{_text(info.get('description', ''))}</p>",
        '<p>The machine-readable document: <a href="/api/openapi.json">/api/openapi.json</a>.</p>',
        _contents(spec),
        _security_schemes(spec),
    ]
    for tag, operations in _by_tag(spec).items():
        parts.append(f"<h2 id='{_anchor('tag', tag)}'>{escape(tag)}</h2>")
        parts.extend(_operation(method, path, op) for method, path, op in operations)
    parts.append("<h2 id=schemas>Schemas</h2>")
    for name, schema in spec.get("components", {}).get("schemas", {}).items():
        parts.append(_schema_section(name, schema))
    parts.append("</body></html>")
    return "\n".join(parts)


def _by_tag(spec: Schema) -> dict[str, list[tuple[str, str, Schema]]]:
    grouped: dict[str, list[tuple[str, str, Schema]]] = {t["name"]: [] for t in spec.get("tags", [])}
    for path, methods in spec.get("paths", {}).items():
        for method, op in methods.items():
            tag = (op.get("tags") or ["Other"])[0]
            grouped.setdefault(tag, []).append((method, path, op))
    return {tag: ops for tag, ops in grouped.items() if ops}


def _anchor(*words: str) -> str:
    return "-".join("".join(c if c.isalnum() else "-" for c in w.lower()) for w in words)


def _text(value: Any) -> str:
    """Plain text with `code` spans, as the document's descriptions write them."""
    pieces = escape(str(value)).split("`")
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(pieces))


def _contents(spec: Schema) -> str:
    items = [
        f"<li><a href='#{_anchor(m, p)}'><code>{escape(m.upper())} {escape(p)}</code></a> "
        f"{escape(op.get('summary', ''))}"
        for ops in _by_tag(spec).values()
        for m, p, op in ops
    ]
    return "<nav><h2>Operations</h2><ul>" + "".join(items) + "</ul><p><a href='#schemas'>Schemas</a></p></nav>"


def _security_schemes(spec: Schema) -> str:
    schemes = spec.get("components", {}).get("securitySchemes", {})
    rows = "".join(
        f"<tr><td><code>{escape(name)}</code></td><td>{escape(s.get('type', ''))}</td>"
        f"<td>{_text(s.get('description', ''))}</td></tr>"
        for name, s in schemes.items()
    )
    return f"<h2>Authentication</h2><table><tr><th>scheme</th><th>type</th><th>how</th></tr>{rows}</table>"


def _security(op: Schema) -> str:
    needs = op.get("security")
    if needs == []:
        return "public: no credentials"
    alternatives = [
        " and ".join(
            f"{escape(name)}" + (f" (scope {escape(', '.join(scopes))})" if scopes else "")
            for name, scopes in need.items()
        )
        for need in needs or []
    ]
    return " or ".join(alternatives)


def _operation(method: str, path: str, op: Schema) -> str:
    parts = [
        f"<section class=op id='{_anchor(method, path)}'>",
        f"<h3><span class='method {escape(method)}'>{escape(method.upper())}</span><code>{escape(path)}</code> "
        f"{escape(op.get('summary', ''))}</h3>",
    ]
    if op.get("description"):
        parts.append(f"<p>{_text(op['description'])}</p>")
    parts.append(f"<p class=muted>Authentication: {_security(op)}</p>")
    if op.get("parameters"):
        rows = "".join(
            f"<tr><td><code>{escape(p['name'])}</code></td><td>{escape(p['in'])}</td>"
            f"<td>{'yes' if p.get('required') else 'no'}</td><td>{type_label(p.get('schema', {}))}</td>"
            f"<td>{_text(p.get('description', ''))}</td></tr>"
            for p in op["parameters"]
        )
        parts.append(
            "<table><tr><th>parameter</th><th>in</th><th>required</th><th>type</th><th></th></tr>" + rows + "</table>"
        )
    body = op.get("requestBody")
    if body:
        needed = "required" if body.get("required") else "optional"
        parts.append(f"<p>Body ({needed}): {_content_label(body.get('content', {}))}</p>")
    rows = "".join(
        f"<tr><td>{escape(status)}</td><td>{_text(answer.get('description', ''))}</td>"
        f"<td>{_content_label(answer.get('content', {}))}</td></tr>"
        for status, answer in op.get("responses", {}).items()
    )
    parts.append(f"<table><tr><th>status</th><th>when</th><th>body</th></tr>{rows}</table></section>")
    return "".join(parts)


def _content_label(content: Schema) -> str:
    return (
        "; ".join(
            f"{type_label(media.get('schema', {}))} <span class=muted>{escape(kind)}</span>"
            for kind, media in content.items()
        )
        or "none"
    )


def type_label(schema: Schema) -> str:
    """A short, linked description of a schema's type and limits, e.g. ``string (uuid) | null``."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return f"<a href='#{_anchor('schema', name)}'>{escape(name)}</a>"
    if "anyOf" in schema:
        return " | ".join(type_label(s) for s in schema["anyOf"])
    types = schema.get("type", "any")
    types = types if isinstance(types, list) else [types]
    labels = [_one_type(t, schema) for t in types if t != "null"]
    if "null" in types:
        labels.append("null")
    return " | ".join(labels)


def _one_type(kind: str, schema: Schema) -> str:
    if "enum" in schema:
        return "one of " + ", ".join(f"<code>{escape(str(v))}</code>" for v in schema["enum"] if v is not None)
    if kind == "array":
        label = f"array of {type_label(schema.get('items', {}))}"
    elif kind == "object" and "properties" in schema:
        label = "object {" + ", ".join(escape(k) for k in schema["properties"]) + "}"
    else:
        label = escape(kind)
    if "format" in schema:
        label += f" ({escape(schema['format'])})"
    limits = _limits(schema)
    return f"{label} {limits}".strip()


def _limits(schema: Schema) -> str:
    words = []
    low, high = schema.get("minimum"), schema.get("maximum", schema.get("exclusiveMaximum"))
    if low is not None or high is not None:
        words.append(f"{'' if low is None else low}…{'' if high is None else high}")
    if "maxLength" in schema:
        words.append(f"{schema.get('minLength', 0)} to {schema['maxLength']} characters")
    if "maxItems" in schema:
        words.append(f"at most {schema['maxItems']}")
    if "default" in schema:
        words.append(f"default {escape(str(schema['default']))}")
    return f"<span class=muted>{', '.join(words)}</span>" if words else ""


def _schema_section(name: str, schema: Schema) -> str:
    head = f"<section id='{_anchor('schema', name)}'><h3>{escape(name)}</h3>"
    if schema.get("description"):
        head += f"<p>{_text(schema['description'])}</p>"
    properties = schema.get("properties")
    if not properties:
        return head + f"<p>{type_label(schema)}</p></section>"
    required = set(schema.get("required", []))
    rows = "".join(
        f"<tr><td><code>{escape(field)}</code></td><td>{'yes' if field in required else 'no'}</td>"
        f"<td>{type_label(sub)}</td><td>{_text(sub.get('description', ''))}</td></tr>"
        for field, sub in properties.items()
    )
    return head + f"<table><tr><th>field</th><th>required</th><th>type</th><th></th></tr>{rows}</table></section>"

"""BILL v3 list semantics: ``filters=``, ``sort=``, ``max`` and opaque ``page`` tokens.

Filter syntax (dossier B5): ``field:op:value`` joined by commas (AND). Values are double-quoted
(``name:eq:"Adobe Inc."``, ``updatedTime:gte:"2026-11-01T00:00:00.000Z"``); ``in``/``nin`` take one
quoted comma list (``billCurrency:in:"USD,CAD"``). Inside quotes a backslash escapes ``"`` and
``\\`` (UNCONFIRMED: the escape syntax is not documented). Only the documented filterable fields
and operators per entity are accepted; anything else is an ``INVALID_REQUEST`` error.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timezone
from operator import itemgetter
from typing import Any

from airflow_provider_mlconnector.sandbox.bill.errors import InvalidRequest

ALL_OPS = frozenset({"eq", "ne", "gt", "gte", "lt", "lte", "in", "nin", "sw"})
_ID = frozenset({"eq", "ne", "in"})
_BOOL = frozenset({"eq", "ne"})
_RANGE = frozenset({"gt", "gte", "lt", "lte"})
_ENUM = frozenset({"eq", "ne", "in", "nin"})


@dataclass(frozen=True)
class FieldSpec:
    """One filterable field: its value type, allowed operators and the record key holding it."""

    kind: str  # "str" | "bool" | "datetime" | "date"
    ops: frozenset[str]
    key: str


def _spec(kind: str, ops: frozenset[str], key: str) -> FieldSpec:
    return FieldSpec(kind, ops, key)


_TIMES = {
    "createdTime": _spec("datetime", _RANGE, "_created"),
    "updatedTime": _spec("datetime", _RANGE, "_updated"),
}

# Dossier B5 docs/filterable-fields. Payments beyond id/vendorId are UNCONFIRMED (switch).
FILTERABLE: dict[str, dict[str, FieldSpec]] = {
    "vendors": {
        "id": _spec("str", _ID, "id"),
        "archived": _spec("bool", _BOOL, "archived"),
        "name": _spec("str", frozenset({"eq", "sw"}), "name"),
        "accountType": _spec("str", _ENUM, "accountType"),
        "billCurrency": _spec("str", _ENUM, "billCurrency"),
        **_TIMES,
    },
    "bills": {
        "id": _spec("str", _ID, "id"),
        "archived": _spec("bool", _BOOL, "archived"),
        "vendorId": _spec("str", frozenset({"eq", "in"}), "vendorId"),
        "dueDate": _spec("date", _RANGE, "dueDate"),
        "paymentStatus": _spec("str", frozenset({"eq", "ne", "in"}), "paymentStatus"),
        **_TIMES,
    },
    "payments": {
        "id": _spec("str", _ID, "id"),
        "vendorId": _spec("str", frozenset({"eq", "in"}), "vendorId"),
        **_TIMES,
    },
    "chart-of-accounts": {
        "id": _spec("str", _ID, "id"),
        "archived": _spec("bool", _BOOL, "archived"),
        "name": _spec("str", frozenset({"eq", "sw"}), "name"),
        **_TIMES,
    },
}

# yyyy-MM-dd'T'HH:mm:ss.SSSX, ...SSS, ...ss, ...mm, yyyy-MM-dd (dossier B5).
_DATETIME = re.compile(
    r"^(?P<date>\d{4}-\d{2}-\d{2})"
    r"(?:T(?P<hm>\d{2}:\d{2})(?::(?P<s>\d{2})(?:\.(?P<ms>\d{3})(?P<tz>Z|[+-]\d{2}(?::?\d{2})?)?)?)?)?$"
)
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass(frozen=True)
class Condition:
    field: str
    op: str
    values: tuple[Any, ...]
    spec: FieldSpec


def fields_for(entity: str, switches: dict[str, Any]) -> dict[str, FieldSpec]:
    specs = dict(FILTERABLE[entity])
    if entity == "payments":
        extra = switches.get("payments_extra_filterable_fields") or []
        for name in extra:
            specs.setdefault(name, _TIMES.get(name) or _spec("str", _ENUM, name))
    return specs


def parse_filters(text: str | None, entity: str, switches: dict[str, Any]) -> list[Condition]:
    """Parse ``filters=``; raise ``InvalidRequest`` naming the bad part."""
    if not text:
        return []
    specs = fields_for(entity, switches)
    conditions = []
    for clause, quoted in _split_clauses(text):
        field, op, raw = clause
        spec = specs.get(field)
        if spec is None:
            raise InvalidRequest(f"filters: field '{field}' is not filterable for {entity}")
        if op not in ALL_OPS:
            raise InvalidRequest(f"filters: unknown operator '{op}'")
        if op not in spec.ops:
            raise InvalidRequest(f"filters: operator '{op}' is not supported for field '{field}'")
        if spec.kind != "bool" and not quoted and switches.get("filters_require_quotes", True):
            raise InvalidRequest(f"filters: the value for '{field}' must be enclosed in double quotes")
        items = raw.split(",") if op in ("in", "nin") else [raw]
        conditions.append(Condition(field, op, tuple(_typed(spec, field, v) for v in items), spec))
    return conditions


def _split_clauses(text: str) -> list[tuple[tuple[str, str, str], bool]]:
    """Split ``a:eq:"x,y",b:gte:"..."`` respecting quotes and backslash escapes."""
    clauses: list[tuple[tuple[str, str, str], bool]] = []
    i, n = 0, len(text)
    while i < n:
        head = re.match(r"([A-Za-z][A-Za-z0-9.]*):([A-Za-z]+):", text[i:])
        if head is None:
            raise InvalidRequest(f"filters: cannot parse '{text[i:]}' (expected field:operator:value)")
        field, op = head.group(1), head.group(2)
        i += head.end()
        if i < n and text[i] == '"':
            value, i = _read_quoted(text, i + 1)
            quoted = True
        else:
            end = text.find(",", i)
            end = n if end == -1 else end
            value, i = text[i:end], end
            quoted = False
            if '"' in value:
                raise InvalidRequest(f"filters: unbalanced quote in the value for '{field}'")
        clauses.append(((field, op, value), quoted))
        if i < n:
            if text[i] != ",":
                raise InvalidRequest(f"filters: expected ',' after the value for '{field}'")
            i += 1
            if i == n:
                raise InvalidRequest("filters: trailing ','")
    return clauses


def _read_quoted(text: str, i: int) -> tuple[str, int]:
    out: list[str] = []
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            out.append(text[i + 1])
            i += 2
            continue
        if ch == '"':
            return "".join(out), i + 1
        out.append(ch)
        i += 1
    raise InvalidRequest("filters: unterminated quoted value")


def _typed(spec: FieldSpec, field: str, raw: str) -> Any:
    if spec.kind == "bool":
        if raw not in ("true", "false"):
            raise InvalidRequest(f"filters: the value for '{field}' must be true or false")
        return raw == "true"
    if spec.kind == "datetime":
        return parse_datetime(raw, field)
    if spec.kind == "date":
        if not _DATE.match(raw):
            raise InvalidRequest(f"filters: the value for '{field}' must be a date yyyy-MM-dd")
        return raw
    return raw


def parse_datetime(raw: str, field: str) -> float:
    """A filter date-time as epoch seconds; zone-less values are UTC (UNCONFIRMED)."""
    m = _DATETIME.match(raw)
    if m is None:
        raise InvalidRequest(
            f"filters: the value for '{field}' must use yyyy-MM-dd'T'HH:mm:ss.SSSX or a documented shorter form"
        )
    try:
        day = date.fromisoformat(m.group("date"))
        hh, mm = (int(x) for x in (m.group("hm") or "00:00").split(":"))
        moment = datetime(
            day.year,
            day.month,
            day.day,
            hh,
            mm,
            int(m.group("s") or 0),
            int(m.group("ms") or 0) * 1000,
            tzinfo=timezone.utc,
        )
    except ValueError:
        raise InvalidRequest(f"filters: '{raw}' is not a valid date-time for '{field}'") from None
    tz = m.group("tz")
    offset = 0
    if tz and tz != "Z":
        sign = -1 if tz[0] == "-" else 1
        digits = tz[1:].replace(":", "")
        offset = sign * (int(digits[:2]) * 3600 + int(digits[2:4] or 0) * 60)
    return moment.timestamp() - offset


def matches(record: dict[str, Any], conditions: Sequence[Condition], case_insensitive_eq: bool = False) -> bool:
    return all(_holds(record.get(c.spec.key), c, case_insensitive_eq) for c in conditions)


def _holds(actual: Any, c: Condition, case_insensitive_eq: bool) -> bool:
    if actual is None:
        return c.op in ("ne", "nin")
    if c.spec.kind == "datetime":
        actual = round(float(actual), 3)
        wanted: Any = round(float(c.values[0]), 3)
    else:
        wanted = c.values[0]
    fold: Callable[[Any], Any] = (
        (lambda v: v.casefold() if isinstance(v, str) else v) if case_insensitive_eq else (lambda v: v)
    )
    op = c.op
    if op == "eq":
        return bool(fold(actual) == fold(wanted))
    if op == "ne":
        return bool(actual != wanted)
    if op == "in":
        return actual in c.values
    if op == "nin":
        return actual not in c.values
    if op == "sw":
        return isinstance(actual, str) and actual.startswith(str(wanted))
    comparisons: dict[str, Callable[[Any, Any], bool]] = {
        "gt": lambda a, b: a > b,
        "gte": lambda a, b: a >= b,
        "lt": lambda a, b: a < b,
        "lte": lambda a, b: a <= b,
    }
    return comparisons[op](actual, wanted)


def parse_sort(text: str | None, entity: str, switches: dict[str, Any]) -> list[tuple[str, bool]]:
    """``sort=field:asc|desc`` (comma-joined); sortable fields = filterable fields (UNCONFIRMED)."""
    if not text:
        return []
    specs = fields_for(entity, switches)
    keys: list[tuple[str, bool]] = []
    for part in text.split(","):
        field, _, order = part.partition(":")
        order = order or "asc"
        if field not in specs:
            raise InvalidRequest(f"sort: field '{field}' is not sortable for {entity}")
        if order not in ("asc", "desc"):
            raise InvalidRequest(f"sort: order must be asc or desc, not '{order}'")
        keys.append((specs[field].key, order == "desc"))
    return keys


def apply_sort(records: list[dict[str, Any]], keys: list[tuple[str, bool]]) -> list[dict[str, Any]]:
    # Stable sorts applied last key first; missing values sort first.
    for key, descending in reversed(keys):
        present = [r for r in records if r.get(key) is not None]
        missing = [r for r in records if r.get(key) is None]
        present.sort(key=itemgetter(key), reverse=descending)
        records = missing + present
    return records


def page_size(raw: str | None, default: int) -> int:
    if raw is None or raw == "":
        return default
    try:
        size = int(raw)
    except ValueError:
        raise InvalidRequest("max: must be an integer between 1 and 100") from None
    if not 1 <= size <= 100:
        raise InvalidRequest("max: must be between 1 and 100")
    return size


def fingerprint(*parts: str | None) -> str:
    return hashlib.sha256("\x1f".join(p or "" for p in parts).encode()).hexdigest()[:12]


def encode_token(offset: int, query: str) -> str:
    raw = json.dumps({"o": offset, "q": query}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str | None, query: str) -> int:
    """The offset a ``page`` token stands for; tokens from another query are refused."""
    if not token:
        return 0
    try:
        padded = token + "=" * (-len(token) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        offset, owner = int(data["o"]), str(data["q"])
    except (ValueError, KeyError, TypeError):
        raise InvalidRequest("page: invalid page token") from None
    if owner != query or offset < 0:
        raise InvalidRequest("page: the page token does not belong to this query")
    return offset


def paginate(
    rows: list[dict[str, Any]], *, size: int, token: str | None, query: str
) -> tuple[list[dict[str, Any]], str | None, str | None]:
    """One page of ``rows`` plus ``nextPage`` (absent on the last page) and ``prevPage``."""
    offset = decode_token(token, query)
    page = rows[offset : offset + size]
    next_token = encode_token(offset + size, query) if offset + size < len(rows) else None
    prev_token = encode_token(max(0, offset - size), query) if offset > 0 else None
    return page, next_token, prev_token

"""BILL's wire format: JSON with money as exact numbers, and the v3 error array."""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from airflow_provider_mlconnector.sandbox.bill.errors import BillError

_MARK = "\u0000DEC:"
_MARKED = re.compile(r'"\\u0000DEC:([-0-9.Ee+]+)"')


def render_json(payload: Any) -> bytes:
    """Minified JSON; ``Decimal`` amounts become JSON numbers with their exact digits (``659.88``)."""

    def default(value: Any) -> Any:
        if isinstance(value, Decimal):
            return f"{_MARK}{value}"
        raise TypeError(f"cannot serialise {type(value).__name__}")

    text = json.dumps(payload, default=default, separators=(",", ":"), ensure_ascii=False)
    return _MARKED.sub(r"\1", text).encode("utf-8")


def parse_json(raw: bytes) -> Any:
    """A request body; numbers with a fraction become ``Decimal`` so no float ever touches money."""
    return json.loads(raw, parse_float=Decimal)


def error_body(error: BillError, now: float) -> list[dict[str, str]]:
    stamp = datetime.fromtimestamp(now, tz=timezone.utc).isoformat(timespec="milliseconds")
    return [
        {"timestamp": stamp, "code": error.code, "severity": "ERROR", "category": error.category, "message": message}
        for message in error.messages
    ]

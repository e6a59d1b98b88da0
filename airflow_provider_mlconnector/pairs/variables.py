"""Airflow Variables a pair reads at run time (overrides, modes), the same way for every pair."""

from __future__ import annotations

import json
import os
from typing import Any

from airflow_provider_mlconnector.exceptions import ConfigurationError


def variable(name: str) -> str | None:
    """The Variable ``name`` (or its ``AIRFLOW_VAR_<NAME>`` environment form), None when unset."""
    raw = os.environ.get(f"AIRFLOW_VAR_{name.upper()}")
    if raw is not None:
        return raw
    try:
        from airflow.sdk import Variable

        value = Variable.get(name, default=None)
    except Exception:  # noqa: BLE001 - outside a task (tests, CLI) there is no Variable API
        return None
    return None if value is None else str(value)


def json_mapping(name: str) -> dict[str, str]:
    """A Variable holding a JSON object of strings (``{}`` when unset)."""
    raw = variable(name)
    if not raw:
        return {}
    try:
        parsed: Any = json.loads(raw)
    except ValueError as exc:
        raise ConfigurationError(f"Variable {name} is not valid JSON: {exc}") from None
    if not isinstance(parsed, dict):
        raise ConfigurationError(f"Variable {name} must be a JSON object")
    return {str(k): str(v) for k, v in parsed.items()}

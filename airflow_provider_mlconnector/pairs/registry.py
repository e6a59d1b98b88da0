"""Find an entity spec by pair and entity name (what the generic operators are given)."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from airflow_provider_mlconnector.operators.engine import EntitySpec

PAIRS = ("freshbooks_to_bill",)


def entity_spec(pair: str, entity: str) -> type[EntitySpec]:
    if pair not in PAIRS:
        raise KeyError(f"unknown pair {pair!r}; known: {PAIRS}")
    module = importlib.import_module(f"airflow_provider_mlconnector.pairs.{pair}")
    specs: dict[str, type[EntitySpec]] = module.ENTITY_SPECS
    if entity not in specs:
        raise KeyError(f"pair {pair!r} has no entity {entity!r}; known: {sorted(specs)}")
    return specs[entity]

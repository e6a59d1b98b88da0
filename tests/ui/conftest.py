"""Fixtures of the reconciliation tests: hooks on the sandbox's demo data."""

from __future__ import annotations

import pytest


@pytest.fixture
def sandbox_hooks(sandbox, reset_demo, use_connection, state_store):
    """``sandbox_hooks(BillHook, QuickBooksHook)``: one hook per class on the demo data, each on its
    ``<conn type>_default`` connection pointing at the sandbox, sharing the test's state store."""
    reset_demo()

    def hooks(*classes):
        made = []
        for cls in classes:
            system = cls.conn_type
            use_connection(f"{system}_default", sandbox.sandbox.systems[system].connection(f"{sandbox.url}/{system}"))
            made.append(cls(f"{system}_default", state_store=state_store))
        return tuple(made)

    return hooks

"""What the pair conformance suite needs to know about each pair: one :class:`PairCase` per pair.

A pair joins the suite by adding its case to :data:`CASES` (one line). Every function gets the
test's :class:`~tests.e2e.conftest.Harness` and works as a user of the two systems would: through
the sandbox's real HTTP APIs (``harness.hook("freshbooks")`` gives a hook on the sandbox
connection, sharing the run's state store for its tokens) or the ``/_sandbox`` control plane
(``harness.control``: seed fixtures, faults, state for assertions), never through the ID map.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Harness = Any  # tests.e2e.conftest.Harness


@dataclass(frozen=True)
class PairCase:
    """How to drive one pair through the conformance suite.

    :param dag_id: the pair's DAG.
    :param seed: put the pair's story into a reset sandbox (usually ``control.seed_demo()``).
    :param target_keys: entity -> the natural keys of every record of that entity in the
        target(s), one item per record (a duplicate shows as a repeated key).
    :param story: entity -> keys the first run must have written (each must be the start of one
        of ``target_keys``; a key may be a prefix such as ``"BILL payment"``).
    :param creates: ``(system, method, path regex)`` of each kind of create the pair makes, for
        ``drop_after_commit`` faults.
    :param empty: leave the accounts connected but with nothing in them (a new customer).
    :param malform: corrupt one source record (missing field, ``"N/A"`` amount...) for every read
        until the sandbox's faults are cleared (a ``corrupt_row`` fault with a large count);
        returns ``(entity, its natural key)`` that must NOT be written, while the rest are.
    :param list_twice: make the source list one record twice in a run (page drift); returns
        ``(entity, its natural key)``, which must be written exactly once.
    :param rename_onto_sibling: after a first run, change one synced source record so that its
        natural key becomes another synced record's; returns ``(entity, source id)`` which must be
        dead-lettered as ``duplicate_natural_key`` while the stream goes on.
    :param stream_goes_on: after ``rename_onto_sibling``: make a fresh, valid change elsewhere in
        the same stream and return ``(entity, its natural key)``, which the next run must write.
    :param read_posts: POST routes that only read (see the field).
    """

    dag_id: str
    seed: Callable[[Harness], None]
    target_keys: Callable[[Harness], dict[str, list[str]]]
    story: dict[str, set[str]]
    creates: list[tuple[str, str, str]]
    empty: Callable[[Harness], None]
    malform: Callable[[Harness], tuple[str, str]]
    list_twice: Callable[[Harness], tuple[str, str]]
    rename_onto_sibling: Callable[[Harness], tuple[str, str]]
    stream_goes_on: Callable[[Harness], tuple[str, str]]
    #: the pair's own assertions on the story after the first run (amounts, mapped accounts,
    #: the dead letters the story must produce...), so no second harness repeats that run.
    check_story: Callable[[Harness], None] = lambda harness: None
    extra_env: dict[str, str] = field(default_factory=dict)
    #: routes (``"system METHOD path"``) that are POSTs but read: Expensify sends every job, its
    #: report exports included, as a POST to one endpoint. They do not count as writes.
    read_posts: tuple[str, ...] = ()


def _cases() -> list[PairCase]:
    from tests.e2e.cases import (
        bamboohr_to_freshbooks,
        bigcommerce_to_freshbooks,
        bill_to_quickbooks,
        expensify_to_freshbooks,
        freshbooks_to_bill,
    )

    return [
        freshbooks_to_bill.CASE,
        expensify_to_freshbooks.CASE,
        bamboohr_to_freshbooks.CASE,
        bigcommerce_to_freshbooks.CASE,
        bill_to_quickbooks.CASE,
    ]


#: every pair in the conformance suite (add yours: import its module in ``_cases``).
CASES = _cases()

"""One module per integration pair; :data:`PAIRS` lists them by name (explicit imports, no strings).

``PAIRS`` is built on first use: a DAG file imports only its own pair, so parsing one DAG does
not import the four other pairs and their hooks.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_provider_mlconnector.operators.pair import Pair

    PAIRS: dict[str, Pair]


@functools.cache
def _pairs() -> dict[str, Pair]:
    from airflow_provider_mlconnector.pairs import (
        bamboohr_to_freshbooks,
        bigcommerce_to_freshbooks,
        bill_to_quickbooks,
        expensify_to_freshbooks,
        freshbooks_to_bill,
    )

    # In the order money flows: the pairs that write FreshBooks, then FreshBooks -> BILL (which
    # reads the bill vendors and bills they made: employees' reimbursements are paid through BILL),
    # then BILL -> QuickBooks. One pass in this order (``make demo``) leaves nothing for a second.
    ordered = (
        bigcommerce_to_freshbooks.PAIR,
        bamboohr_to_freshbooks.PAIR,
        expensify_to_freshbooks.PAIR,
        freshbooks_to_bill.PAIR,
        bill_to_quickbooks.PAIR,
    )
    return {pair.name: pair for pair in ordered}


def __getattr__(name: str) -> Any:
    if name == "PAIRS":
        return _pairs()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

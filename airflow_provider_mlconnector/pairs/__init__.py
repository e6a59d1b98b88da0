"""One module per integration pair; :data:`PAIRS` lists them by name (explicit imports, no strings)."""

from __future__ import annotations

from airflow_provider_mlconnector.operators.pair import Pair
from airflow_provider_mlconnector.pairs import (
    bamboohr_to_freshbooks,
    bigcommerce_to_freshbooks,
    bill_to_quickbooks,
    expensify_to_freshbooks,
    freshbooks_to_bill,
)

PAIRS: dict[str, Pair] = {
    pair.name: pair
    for pair in (
        freshbooks_to_bill.PAIR,
        bamboohr_to_freshbooks.PAIR,
        expensify_to_freshbooks.PAIR,
        bill_to_quickbooks.PAIR,
        bigcommerce_to_freshbooks.PAIR,
    )
}

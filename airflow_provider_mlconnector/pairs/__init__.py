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

#: in the order money flows: the pairs that write FreshBooks, then FreshBooks -> BILL (which reads
#: the bill vendors and bills they made: employees' reimbursements are paid through BILL), then
#: BILL -> QuickBooks. One pass in this order (``make demo``) leaves nothing for a second to write.
PAIRS: dict[str, Pair] = {
    pair.name: pair
    for pair in (
        bigcommerce_to_freshbooks.PAIR,
        bamboohr_to_freshbooks.PAIR,
        expensify_to_freshbooks.PAIR,
        freshbooks_to_bill.PAIR,
        bill_to_quickbooks.PAIR,
    )
}

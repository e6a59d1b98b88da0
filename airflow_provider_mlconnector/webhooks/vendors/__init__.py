"""The table of systems that send webhooks: name -> handler.

A handler turns one :class:`~..model.Delivery` into a :class:`~..model.Receipt` or raises
:class:`~..model.Rejected`. It verifies before it keeps anything, and never calls a vendor API
while the vendor waits.
"""

from __future__ import annotations

from collections.abc import Callable

from airflow_provider_mlconnector.webhooks.model import Delivery, HandlerContext, Receipt
from airflow_provider_mlconnector.webhooks.vendors import bamboohr, bigcommerce, bill, freshbooks, quickbooks

Handler = Callable[[Delivery, HandlerContext], Receipt]

HANDLERS: dict[str, Handler] = {
    "freshbooks": freshbooks.receive,
    "bill": bill.receive,
    "bigcommerce": bigcommerce.receive,
    "bamboohr": bamboohr.receive,
    "quickbooks": quickbooks.receive,
}

#: systems we sync that have no webhooks, with what to tell a caller
WITHOUT_WEBHOOKS: dict[str, str] = {
    "expensify": "Expensify sends no webhooks; its reports are polled on the DAG's schedule.",
}

__all__ = ["HANDLERS", "WITHOUT_WEBHOOKS", "Handler"]

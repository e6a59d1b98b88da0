"""ml-connector: an Apache Airflow provider that keeps six business systems in sync.

Systems: FreshBooks, BILL, BigCommerce, Expensify, BambooHR and QuickBooks Online.
"""

from __future__ import annotations

__version__ = "0.1.0"

"""BILL -> QuickBooks Online (an Airflow DAG): the mapping rules live in the pair module's docstring."""

from airflow_provider_mlconnector.operators.dag import sync_dag
from airflow_provider_mlconnector.pairs import bill_to_quickbooks

dag = sync_dag(bill_to_quickbooks.PAIR, schedule="@daily", tags=["accounts-payable", "general-ledger"])

"""FreshBooks -> BILL (an Airflow DAG): the mapping rules live in the pair module's docstring."""

from airflow_provider_mlconnector.operators.dag import sync_dag
from airflow_provider_mlconnector.pairs import freshbooks_to_bill

dag = sync_dag(freshbooks_to_bill.PAIR, schedule="@hourly", tags=["accounts-payable"])

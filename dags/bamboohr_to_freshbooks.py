"""BambooHR -> FreshBooks (an Airflow DAG): the mapping rules live in the pair module's docstring."""

from airflow_provider_mlconnector.operators.dag import sync_dag
from airflow_provider_mlconnector.pairs import bamboohr_to_freshbooks

dag = sync_dag(bamboohr_to_freshbooks.PAIR, schedule="@hourly", tags=["people"])

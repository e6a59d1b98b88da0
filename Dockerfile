# The official Airflow image with this provider installed (every component needs it: the API
# server for the connection forms and the webhook plugin, the dag-processor for parsing, workers
# for execution). Airflow is pinned in the same pip command, as in the Makefile.
FROM apache/airflow:3.3.2-python3.11
COPY --chown=airflow:root pyproject.toml README.md /opt/mlconnector/
COPY --chown=airflow:root airflow_provider_mlconnector /opt/mlconnector/airflow_provider_mlconnector
RUN pip install --no-cache-dir "apache-airflow==3.3.2" "/opt/mlconnector[postgres]"

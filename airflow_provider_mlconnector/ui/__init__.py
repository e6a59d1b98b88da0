"""The ML Connector page in the Airflow UI: dead letters, record history, drift (see :mod:`.app`)."""

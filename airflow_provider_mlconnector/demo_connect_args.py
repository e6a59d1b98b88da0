"""Connect arguments for the demo's SQLite metadata database, loaded by Airflow itself.

Airflow imports ``SQLITE`` (``[database] sql_alchemy_connect_args``) while ``import airflow`` is still
running. So this module imports nothing: not Airflow and not the rest of this package (the demo module
imports the pairs, which import the hooks, which import ``airflow.sdk``: a process whose first import is
a hook, such as the webhook CLI, would close an import cycle and fail to start).

The demo's metadata database is written by the scheduler, the DAG processor, the API server, the task
processes and CLI commands at once: Python's default 5 s wait for SQLite's write lock is too short on a
loaded 2-core machine (``database is locked``), so a writer waits up to a minute.
"""

SQLITE = {"timeout": 60}

"""``python -m airflow_provider_mlconnector.state``: the on-call CLI."""

from __future__ import annotations

import sys

from airflow_provider_mlconnector.state.cli import main

if __name__ == "__main__":
    sys.exit(main())

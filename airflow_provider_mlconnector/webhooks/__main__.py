from __future__ import annotations

import sys

from airflow_provider_mlconnector.webhooks.cli import main

sys.exit(main())

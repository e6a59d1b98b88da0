"""``python -m airflow_provider_mlconnector.sandbox [--host H] [--port P] [--seed-demo]``
``python -m airflow_provider_mlconnector.sandbox connections --base-url URL``
"""

from __future__ import annotations

import argparse
import json
import sys

from airflow_provider_mlconnector.sandbox.core import Sandbox
from airflow_provider_mlconnector.sandbox.server import serve


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m airflow_provider_mlconnector.sandbox")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8900)
    parser.add_argument("--seed-demo", action="store_true", help="load the demo story data at start")
    sub = parser.add_subparsers(dest="command")
    conns = sub.add_parser("connections", help="print AIRFLOW_CONN_<SYSTEM>_DEFAULT lines for the sandbox")
    conns.add_argument("--base-url", default="http://127.0.0.1:8900")
    args = parser.parse_args(argv)
    if args.command == "connections":
        for name, conn in Sandbox().connections(args.base_url).items():
            sys.stdout.write(f"AIRFLOW_CONN_{name.upper()}_DEFAULT='{json.dumps(conn)}'\n")
        return 0
    serve(args.host, args.port, seed_demo=args.seed_demo)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

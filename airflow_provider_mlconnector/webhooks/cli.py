"""``python -m airflow_provider_mlconnector.webhooks``: serve the receiver, or register it with a vendor.

    python -m airflow_provider_mlconnector.webhooks --host 0.0.0.0 --port 8090
    python -m airflow_provider_mlconnector.webhooks register bill --url https://hooks.example.com/webhooks/bill

Connections are the ones the DAGs use (``<system>_default`` or ``MLCONNECTOR_<SYSTEM>_CONN_ID``).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence
from typing import Any

from airflow_provider_mlconnector.exceptions import MLConnectorError
from airflow_provider_mlconnector.webhooks import register
from airflow_provider_mlconnector.webhooks.credentials import WebhookCredentials
from airflow_provider_mlconnector.webhooks.settings import conn_id_for

HOOKS = {
    "freshbooks": "FreshBooksHook",
    "bill": "BillHook",
    "bigcommerce": "BigCommerceHook",
    "bamboohr": "BambooHRHook",
}
REGISTRABLE = (*HOOKS, "quickbooks")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m airflow_provider_mlconnector.webhooks", description=__doc__)
    commands = parser.add_subparsers(dest="command")
    serve = commands.add_parser("serve", help="run the receiver with uvicorn (the default command)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8090)
    serve.add_argument("--no-dispatcher", action="store_true", help="only receive; another process triggers DAGs")
    serve.add_argument("--log-level", default="info")
    reg = commands.add_parser("register", help="register the receiver URL with a vendor")
    reg.add_argument("system", choices=REGISTRABLE)
    reg.add_argument("--url", help="the public URL of POST /webhooks/<system> (https)")
    reg.add_argument("--event", action="append", help="FreshBooks: event to register (repeatable)")
    reg.add_argument("--verify", metavar="CALLBACK_ID", help="FreshBooks: confirm a callback with its stored verifier")
    reg.add_argument("--resend", metavar="CALLBACK_ID", help="FreshBooks: ask for the verification message again")
    reg.add_argument("--scope", action="append", help="BigCommerce: webhook scope (repeatable)")
    reg.add_argument("--monitor-field", action="append", help="BambooHR: field whose changes fire events")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if not args_list or args_list[0] not in ("serve", "register", "-h", "--help"):
        args_list.insert(0, "serve")  # `--host H --port N` alone means serve
    args = build_parser().parse_args(args_list)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.command == "serve":
        return serve(args.host, args.port, dispatcher=not args.no_dispatcher, log_level=args.log_level)
    try:
        report = run_registration(args)
    except MLConnectorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for line in report.done:
        print(line)
    for line in report.problems:
        print(f"problem: {line}", file=sys.stderr)
    return 0 if report.ok else 1


def serve(host: str, port: int, *, dispatcher: bool = True, log_level: str = "info") -> int:
    import uvicorn

    from airflow_provider_mlconnector.webhooks.app import create_app

    uvicorn.run(create_app(run_dispatcher=dispatcher), host=host, port=port, log_level=log_level)
    return 0


def make_hook(system: str) -> Any:
    module = importlib.import_module(f"airflow_provider_mlconnector.hooks.{system}")
    return getattr(module, HOOKS[system])(conn_id_for(system))


def make_credentials() -> WebhookCredentials:
    from airflow_provider_mlconnector.state import get_state_store

    return WebhookCredentials(get_state_store().tokens)


def run_registration(args: argparse.Namespace) -> register.RegistrationReport:
    system: str = args.system
    if system == "freshbooks" and (args.verify or args.resend):
        hook = make_hook(system)
        if args.verify:
            return register.verify_freshbooks(hook, make_credentials(), args.verify)
        return register.resend_freshbooks(hook, args.resend)
    if not args.url:
        raise SystemExit(f"register {system}: --url is required")
    if system == "quickbooks":
        return register.quickbooks_instructions(args.url, conn_id_for(system))
    hook = make_hook(system)
    if system == "bill":
        return register.register_bill(hook, args.url)
    if system == "freshbooks":
        return register.register_freshbooks(
            hook, make_credentials(), args.url, args.event or register.FRESHBOOKS_EVENTS
        )
    if system == "bigcommerce":
        return register.register_bigcommerce(
            hook, make_credentials(), args.url, args.scope or register.BIGCOMMERCE_SCOPES
        )
    return register.register_bamboohr(
        hook, make_credentials(), args.url, args.monitor_field or register.BAMBOOHR_MONITOR_FIELDS
    )

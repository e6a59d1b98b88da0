"""On-call CLI for the state store: ``mlconnector-state`` / ``python -m airflow_provider_mlconnector.state``.

::

    dlq list [--status open] [--pair P] [--entity E] [--kind K] [--older-than-hours H]
                                          dead letters, oldest first
    dlq show ID                           one letter with its (redacted) payload
    dlq resolve ID --note TEXT            close a letter by hand (an audit row names you)
    dlq replay ID [ID ...]                flag letters; the next DAG run writes them
    audit SYSTEM RECORD_ID                a record's history across systems, and its ID-map rows
    reconcile PAIR                        where the pair's two systems disagree (reads only)
    tokens rotate-key                     re-encrypt tokens with the newest Fernet key
    migrate                               upgrade the schema to the newest revision

``--json`` (before or after the command) prints machine-readable output. Replay and resolve
are the same code as the ML Connector page's buttons (:mod:`~.oncall`); ``--by`` names who acts
(default: the operating-system user).
"""

from __future__ import annotations

import argparse
import dataclasses
import getpass
import json
import sys
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from enum import Enum
from typing import Any

from airflow_provider_mlconnector.exceptions import MLConnectorError
from airflow_provider_mlconnector.state import oncall
from airflow_provider_mlconnector.state.audit import AuditRow
from airflow_provider_mlconnector.state.dead_letters import DeadLetter, LetterStatus
from airflow_provider_mlconnector.state.store import StateStore, get_state_store

_REASON_WIDTH = 60


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def _emit_json(value: Any) -> None:
    print(json.dumps(_plain(value), indent=2, default=_json_default, sort_keys=True))


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, Enum):
        return str(value.value)
    return str(value)


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[_cell(value) for value in row] for row in rows]
    widths = [max([len(header)] + [len(row[i]) for row in cells]) for i, header in enumerate(headers)]
    lines = ["  ".join(h.upper().ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    return "\n".join(lines)


def _short(text: str, width: int = _REASON_WIDTH) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


# ---------------------------------------------------------------------- commands


def _dlq_list(store: StateStore, args: argparse.Namespace) -> int:
    older = timedelta(hours=args.older_than_hours) if args.older_than_hours else None
    wanted = oncall.LetterFilter(args.status, args.pair, args.entity, args.kind, older)
    letters = oncall.find_letters(store, wanted)
    if args.json:
        _emit_json(letters)
        return 0
    if not letters:
        print("no dead letters")
        return 0
    headers = ("id", "status", "pair", "entity", "tenant", "source_id", "kind", "tries", "updated", "reason")
    rows = [
        (
            dl.id,
            dl.status,
            dl.pair,
            dl.entity,
            dl.source_tenant,
            dl.source_id,
            dl.error_kind,
            dl.attempts,
            dl.updated_at,
            _short(dl.reason),
        )
        for dl in letters
    ]
    print(_table(headers, rows))
    return 0


def _print_letter(letter: DeadLetter) -> None:
    fields = dataclasses.asdict(letter)
    payload = fields.pop("payload")
    width = max(len(name) for name in fields)
    for name, value in fields.items():
        print(f"{name.ljust(width)}  {_cell(value)}")
    print("payload:")
    print(json.dumps(payload, indent=2, sort_keys=True))


def _dlq_show(store: StateStore, args: argparse.Namespace) -> int:
    letter = store.dead_letters.get(args.id)
    if letter is None:
        print(f"error: no dead letter with id {args.id}", file=sys.stderr)
        return 1
    if args.json:
        _emit_json(letter)
    else:
        _print_letter(letter)
    return 0


def _actor(args: argparse.Namespace) -> oncall.Actor:
    return oncall.Actor(args.by or getpass.getuser(), "cli")


def _dlq_resolve(store: StateStore, args: argparse.Namespace) -> int:
    letter = oncall.resolve(store, args.id, args.note, _actor(args))
    if args.json:
        _emit_json(letter)
    else:
        print(f"dead letter {letter.id} resolved: {args.note}")
    return 0


def _dlq_replay(store: StateStore, args: argparse.Namespace) -> int:
    outcome = oncall.request_replay(store, args.ids, _actor(args))
    flagged, skipped = outcome.flagged, outcome.skipped
    if args.json:
        _emit_json({"flagged": flagged, "skipped": {str(k): v for k, v in skipped.items()}})
    else:
        if flagged:
            print(f"flagged for replay by the next run: {', '.join(map(str, flagged))}")
        for letter_id, status in skipped.items():
            print(f"skipped {letter_id}: {status}")
    return 1 if oncall.NOT_FOUND in skipped.values() else 0


def _audit(store: StateStore, args: argparse.Namespace) -> int:
    history = oncall.record_history(store, args.system, args.record_id)
    rows = history.events
    if args.json:
        _emit_json(rows)  # the ID-map rows are in the text output (JSON stays a list of events)
        return 0
    if not rows:
        print(f"no audit events for {args.system} {args.record_id}")
        return 0
    print(_table(("when", "action", "pair", "entity", "source", "target", "run", "try"), [_audit_row(r) for r in rows]))
    for m in history.mappings:
        print(
            f"id map: {m.pair}/{m.entity} {m.source_tenant}/{m.source_id} -> {m.target_tenant}/{m.target_id or '-'}"
            f" ({m.status.value}, last synced {_cell(m.last_synced_at)})"
        )
    return 0


def _reconcile(store: StateStore, args: argparse.Namespace) -> int:
    from airflow_provider_mlconnector.operators.dag import conn_id
    from airflow_provider_mlconnector.operators.reconcile import format_report, run_reconcile
    from airflow_provider_mlconnector.pairs import PAIRS

    pair = PAIRS.get(args.pair)
    if pair is None:
        print(f"error: no pair {args.pair!r}; known: {', '.join(PAIRS)}", file=sys.stderr)
        return 1
    report = run_reconcile(pair.name, conn_id(pair.source), conn_id(pair.target), store)
    if args.json:
        _emit_json(report)
    else:
        print(format_report(report))
    return 2 if report.drift else 0


def _audit_row(row: AuditRow) -> tuple[Any, ...]:
    source = f"{row.source_system}:{row.source_tenant or '-'}/{row.source_id or '-'}"
    target = f"{row.target_system}:{row.target_tenant or '-'}/{row.target_id or '-'}"
    run = f"{row.dag_id or '-'}/{row.run_id or '-'}"
    return (row.occurred_at, row.action, row.pair, row.entity, source, target, run, row.try_number)


def _rotate_key(store: StateStore, args: argparse.Namespace) -> int:
    count = store.tokens.rotate_key()
    if args.json:
        _emit_json({"rotated": count})
    else:
        print(f"re-encrypted {count} credential(s) with the newest key")
    return 0


def _migrate(store: StateStore, args: argparse.Namespace) -> int:
    revision = store.migrate()
    if args.json:
        _emit_json({"url": store.url, "revision": revision})
    else:
        print(f"state store {store.url} is at revision {revision}")
    return 0


# ---------------------------------------------------------------------- parser

Handler = Callable[[StateStore, argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for docs and tests)."""
    # --json is accepted before and after the command; SUPPRESS keeps a sub-level default from
    # overwriting a top-level --json.
    json_flag = argparse.ArgumentParser(add_help=False)
    json_flag.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="machine-readable output")

    parser = argparse.ArgumentParser(
        prog="mlconnector-state", description="Inspect and repair the ml-connector state store."
    )
    parser.add_argument("--json", action="store_true", default=False, help="machine-readable output")
    commands = parser.add_subparsers(dest="command", required=True)

    dlq = commands.add_parser("dlq", help="dead-letter queue").add_subparsers(dest="dlq_command", required=True)
    listing = dlq.add_parser("list", parents=[json_flag], help="list dead letters")
    listing.add_argument("--status", choices=[s.value for s in LetterStatus])
    listing.add_argument("--pair")
    listing.add_argument("--entity")
    listing.add_argument("--kind", help="error kind, e.g. unmapped_account")
    listing.add_argument("--older-than-hours", type=float, help="dead-lettered at least this long ago")
    listing.set_defaults(handler=_dlq_list)
    show = dlq.add_parser("show", parents=[json_flag], help="show one dead letter")
    show.add_argument("id", type=int)
    show.set_defaults(handler=_dlq_show)
    resolve = dlq.add_parser("resolve", parents=[json_flag], help="close a dead letter by hand")
    resolve.add_argument("id", type=int)
    resolve.add_argument("--note", required=True, help="what was done, for the record")
    resolve.add_argument("--by", help="who acts (default: the operating-system user)")
    resolve.set_defaults(handler=_dlq_resolve)
    replay = dlq.add_parser("replay", parents=[json_flag], help="flag dead letters for replay by the next run")
    replay.add_argument("ids", type=int, nargs="+", metavar="ID")
    replay.add_argument("--by", help="who acts (default: the operating-system user)")
    replay.set_defaults(handler=_dlq_replay)

    audit = commands.add_parser("audit", parents=[json_flag], help="history of one record across systems")
    audit.add_argument("system", help="freshbooks, bill, bigcommerce, expensify, bamboohr, quickbooks")
    audit.add_argument("record_id")
    audit.set_defaults(handler=_audit)

    reconcile = commands.add_parser(
        "reconcile", parents=[json_flag], help="drift between a pair's systems (exit 2 when there is drift)"
    )
    reconcile.add_argument("pair", help="the integration, e.g. freshbooks_to_bill")
    reconcile.set_defaults(handler=_reconcile)

    tokens = commands.add_parser("tokens", help="encrypted credentials").add_subparsers(
        dest="tokens_command", required=True
    )
    tokens.add_parser("rotate-key", parents=[json_flag], help="re-encrypt with the newest key").set_defaults(
        handler=_rotate_key
    )

    commands.add_parser("migrate", parents=[json_flag], help="upgrade the schema").set_defaults(handler=_migrate)
    return parser


def main(argv: Sequence[str] | None = None, *, store: StateStore | None = None) -> int:
    """Run one command; returns the process exit code (argparse exits with 2 on bad usage)."""
    args = build_parser().parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(store or get_state_store(), args)
    except MLConnectorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1

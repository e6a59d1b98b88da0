"""Benchmark: sync N BigCommerce orders (customers, products, refunds) into FreshBooks (``bigcommerce_to_freshbooks``).

Same harness as ``bench_freshbooks_to_bill.py`` (a real scheduler, injected latency on every call),
reporting the first run, a no-change rerun, calls per endpoint and per order, and the lower bound:
every FreshBooks write the run needed (client, item, invoice, mark-sent, payment, refund updates)
times the latency, divided by the writers FreshBooks tasks use (``FreshBooksHook.max_concurrency``).

Usage::

    python benchmarks/bench_bigcommerce_to_freshbooks.py --orders 1000 --customers 200 --products 50 --latency-ms 50
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_freshbooks_to_bill import first_run, rerun

from airflow_provider_mlconnector.demo import DemoEnv, free_port, prepare, stop, wait_until_parsed
from airflow_provider_mlconnector.hooks.freshbooks import FreshBooksHook
from airflow_provider_mlconnector.sandbox.server import SandboxControl

ROOT = Path(__file__).resolve().parents[1]
DAG_ID = "bigcommerce_to_freshbooks"
WRITES = ("POST", "PUT", "DELETE")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--orders", type=int, default=1000)
    parser.add_argument("--customers", type=int, default=200)
    parser.add_argument("--products", type=int, default=50)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--home", type=Path, default=ROOT / ".bench")
    args = parser.parse_args()

    env = DemoEnv(args.home.resolve(), free_port(8910), free_port(8090))
    stop(env)
    prepare(env, seed={})
    control = SandboxControl(env.sandbox_url)
    try:
        control.reset()
        control.seed_demo()  # the FreshBooks account and the Summit Outfitters story
        control.generate(
            {"bigcommerce": {"products": args.products, "customers": args.customers, "orders": args.orders}}
        )
        for system in ("bigcommerce", "freshbooks"):
            control.latency(system, args.latency_ms)
        wait_until_parsed(env, [DAG_ID])
        _, first, state1, calls1 = first_run(env, control, DAG_ID)
        second, state2, calls2 = rerun(env, control, DAG_ID)
    finally:
        stop(env)

    fb_writes = sum(n for route, n in calls1.items() if route.startswith("freshbooks ") and route.split()[1] in WRITES)
    fb_writes -= sum(n for route, n in calls1.items() if route.startswith("freshbooks ") and "oauth" in route)
    lower_bound = fb_writes * args.latency_ms / 1000 / FreshBooksHook.max_concurrency
    report = {
        "orders": args.orders,
        "customers": args.customers,
        "products": args.products,
        "latency_ms": args.latency_ms,
        "first_run": {"state": state1, "wall_s": round(first, 1)},
        "no_change_rerun": {"state": state2, "wall_s": round(second, 1), "calls": dict(calls2)},
        "calls_per_endpoint": dict(sorted(calls1.items())),
        "calls_per_order": round(sum(calls1.values()) / max(1, args.orders), 2),
        "freshbooks_writes": fb_writes,
        "lower_bound_s": round(lower_bound, 1),
        "ratio_to_lower_bound": round(first / lower_bound, 2) if lower_bound else None,
    }
    print(json.dumps(report, indent=2))
    return 0 if state1 == state2 == "success" else 1


if __name__ == "__main__":
    raise SystemExit(main())

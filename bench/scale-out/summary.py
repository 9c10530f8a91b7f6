#!/usr/bin/env python3
"""Summarises bench/scale-out rounds: per set-up and workload, medians over rounds of
requests/s, operations/s, request p99, errors, database round trips per operation and peak
RSS; then each Berth set-up's throughput as a ratio of Distribution's, measured in the same
rounds."""

import json
import statistics
import sys
from pathlib import Path

SETUPS = ["sqlite", "pg-s3", "pg-s3-3", "distribution"]


def figures(d, setup, kind):
    report = d / f"{setup}-{kind}.json"
    if not report.exists():
        return None
    with open(report) as f:
        w = next(w for w in json.load(f)["workloads"] if w["name"] == kind)
    db = d / f"{setup}-{kind}.db"
    ops = max(w["operations"]["completed"], 1)
    return {
        "req/s": w["successes_per_sec"],
        "ops/s": w["operations_per_sec"],
        "p99 ms": (w["latency_ms"].get("success") or {}).get("p99"),
        "op p99 ms": (w["latency_ms"].get("operation") or {}).get("p99"),
        "errors": w["errors"],
        "db trips/op": int(db.read_text()) / ops if db.exists() else None,
    }


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


rounds = [Path(d) for d in sys.argv[1:]]
table = {}
print(f"{'set-up':14} {'workload':8} {'req/s':>9} {'ops/s':>8} {'p99 ms':>8} {'op p99':>8} {'errors':>7} {'db/op':>7} {'RSS MiB':>8}")
for setup in SETUPS:
    for kind in ("pull", "push"):
        rows = [f for f in (figures(d, setup, kind) for d in rounds) if f]
        if not rows:
            continue
        m = {key: median([r[key] for r in rows]) for key in rows[0]}
        rss = median([int((d / f"{setup}.rss").read_text()) / 1024 for d in rounds if (d / f"{setup}.rss").exists()])
        table[(setup, kind)] = m
        cell = lambda v, fmt: format(v, fmt) if v is not None else "-"
        print(
            f"{setup:14} {kind:8} {cell(m['req/s'], '9.0f')} {cell(m['ops/s'], '8.1f')} {cell(m['p99 ms'], '8.2f')} "
            f"{cell(m['op p99 ms'], '8.2f')} {cell(m['errors'], '7.0f')} {cell(m['db trips/op'], '7.2f')} {cell(rss, '8.0f')}"
        )
if ("distribution", "pull") in table:
    print()
    for setup in SETUPS[:3]:
        for kind in ("pull", "push"):
            if (setup, kind) in table and (("distribution", kind) in table):
                ratio = table[(setup, kind)]["ops/s"] / max(table[("distribution", kind)]["ops/s"], 1e-9)
                print(f"{setup} {kind} operations/s vs Distribution: x{ratio:.2f}")

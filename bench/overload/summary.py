#!/usr/bin/env python3
"""Summarises bench/overload rounds: medians over rounds of each step's key figures, and
whether the acceptance holds (loaded pull p99 within 2x of unloaded, zero pull errors, shed
p99 under 50 ms)."""

import json
import statistics
import sys
from pathlib import Path


def load(path):
    with open(path) as f:
        return {w["name"]: w for w in json.load(f)["workloads"]}


def p(w, which, q="p99"):
    lat = w["latency_ms"].get(which)
    return lat[q] if lat else None


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


rounds = [Path(d) for d in sys.argv[1:]]
rows = []
for d in rounds:
    unloaded = load(d / "unloaded.json")["pull"]
    row = {
        "appr capacity (req/s)": load(d / "appr-capacity.json")["appr-storm"]["successes_per_sec"],
        "push capacity (ops/s)": load(d / "push-capacity.json")["push"]["operations_per_sec"],
        "unloaded pull p99 (ms)": p(unloaded, "success"),
        "unloaded pull op p99 (ms)": p(unloaded, "operation"),
    }
    for step, other in (("storm", "appr-storm"), ("flood", "push")):
        pull, load_w = load(d / f"{step}.json")["pull"], load(d / f"{step}-load.json")[other]
        row[f"{step}: offered {other} req/s"] = load_w["requests_per_sec"]
        row[f"{step}: served {other} req/s"] = load_w["successes_per_sec"]
        row[f"{step}: shed {other} req/s"] = load_w["shed"] / max(load_w["requests"], 1) * load_w["requests_per_sec"]
        row[f"{step}: {other} shed p99 (ms)"] = p(load_w, "shed")
        row[f"{step}: {other} errors"] = load_w["errors"]
        row[f"{step}: pull p99 (ms)"] = p(pull, "success")
        row[f"{step}: pull op p99 (ms)"] = p(pull, "operation")
        row[f"{step}: pull p99 / unloaded"] = p(pull, "success") / p(unloaded, "success")
        row[f"{step}: pull errors"] = pull["errors"]
        row[f"{step}: pull shed"] = pull["shed"]
    rows.append(row)

print(f"{'figure':44} " + " ".join(f"{'round ' + str(i + 1):>12}" for i in range(len(rows))) + f" {'median':>12}")
for key in rows[0]:
    values = [r[key] for r in rows]
    cells = " ".join(f"{v:12.2f}" if isinstance(v, float) else f"{str(v):>12}" for v in values)
    m = median(values)
    print(f"{key:44} {cells} {m:12.2f}")

verdicts = []
for step in ("storm", "flood"):
    ratio = median([r[f"{step}: pull p99 / unloaded"] for r in rows])
    errors = sum(r[f"{step}: pull errors"] + r[f"{step}: pull shed"] for r in rows)
    shed_p99 = median([r[f"{step}: {'appr-storm' if step == 'storm' else 'push'} shed p99 (ms)"] for r in rows])
    ok = ratio <= 2.0 and errors == 0 and (shed_p99 is None or shed_p99 < 50.0)
    verdicts.append(ok)
    print(f"{step}: pull p99 x{ratio:.2f} of unloaded, pull errors+shed {errors}, shed p99 "
          f"{'n/a' if shed_p99 is None else f'{shed_p99:.2f} ms'}: {'PASS' if ok else 'FAIL'}")
sys.exit(0 if all(verdicts) else 1)

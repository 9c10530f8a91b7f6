#!/usr/bin/env python3
"""Collects one results directory of run.sh into summary.json and summary.md; prints the table."""

import glob
import json
import os
import re
import statistics
import sys


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def main(out):
    config = load(os.path.join(out, "config.json")) or {}
    runs = []
    for d in sorted(glob.glob(os.path.join(out, "*-*/"))):
        prep = load(os.path.join(d, "prep.json"))
        if not prep:
            continue
        rounds = []
        for path in sorted(glob.glob(os.path.join(d, "all-r*.json")), key=lambda p: int(re.findall(r"r(\d+)\.json$", p)[0])):
            r = int(re.findall(r"r(\d+)\.json$", path)[0])
            rss = load(os.path.join(d, "rss-r%d.json" % r)) or {}
            rounds.append({
                "round": r,
                "all": load(path),
                "steps": {s: load(os.path.join(d, "%s-r%d.json" % (s, r))) for s in ("list", "show", "blob")},
                "rss_hwm_kb": rss.get("rss_hwm_kb"),
                "rss_kb": rss.get("rss_kb"),
            })
        runs.append(dict(prep, rounds=rounds))
    runs.sort(key=lambda r: (r["packages"], r["name"]))
    summary = {"config": config, "runs": runs}
    with open(os.path.join(out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)

    def mib(kb):
        return "%.0f" % (kb / 1024.0) if kb else "-"

    def pair(step):
        if not step:
            return "-"
        lat = step["latency_ms"]
        return "%.0f / %.2f / %.2f" % (step["rps"], lat["p50"], lat["p99"])

    lines = [
        "# OperatorHub storm (App Registry hot path)",
        "",
        "wrk %s, %s connections, %s threads, %s per mixed run (+ %s warm-up), %s per single-step run; "
        "namespaces: %s (auto = one per 100 packages), %s releases per package; %s CPUs; Berth %s; %s."
        % (config.get("wrk", "?"), config.get("connections"), config.get("threads"), config.get("duration"),
           config.get("warmup"), config.get("step_duration"), config.get("namespaces"), config.get("releases"),
           config.get("nproc"), config.get("berth_commit"), config.get("date")),
        "",
        "Mixed run = list, show, blob of one package after another (1/3 each). Latencies in ms; "
        "step columns are req/s / p50 / p99 of a run replaying only that step.",
        "",
        "| server | packages | namespaces | round | req/s | p50 | p90 | p99 | max | errors | list | show | blob | peak RSS MiB | seed s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---|---:|---:|",
    ]
    for run in runs:
        for rd in run["rounds"]:
            a = rd["all"]
            if not a:
                continue
            lat = a["latency_ms"]
            lines.append("| %s | %d | %d | %d | %.0f | %.2f | %.2f | %.2f | %.1f | %d | %s | %s | %s | %s | %s |" % (
                run["name"], run["packages"], run["namespaces"], rd["round"], a["rps"], lat["p50"], lat["p90"], lat["p99"], lat["max"],
                sum(a["errors"].values()), pair(rd["steps"]["list"]), pair(rd["steps"]["show"]),
                pair(rd["steps"]["blob"]), mib(rd["rss_hwm_kb"]),
                ("%.0f" % run["seed_seconds"]) if run.get("seeded") else "-"))

    # Berth against the reference at each package count both ran at (medians over rounds).
    by = {}
    for run in runs:
        vals = [rd["all"] for rd in run["rounds"] if rd["all"]]
        if vals:
            by[(run["kind"], run["packages"])] = (statistics.median(v["rps"] for v in vals),
                                                  statistics.median(v["latency_ms"]["p50"] for v in vals),
                                                  statistics.median(v["latency_ms"]["p99"] for v in vals))
    cmp_lines = []
    for (kind, n), (rps, p50, p99) in sorted(by.items(), key=lambda kv: kv[0][1]):
        ref = by.get(("ref", n))
        if kind == "berth" and ref:
            cmp_lines.append("- %d packages: Berth %.0f req/s vs reference %.0f req/s (x%.1f); p50 %.2f vs %.2f ms; "
                             "p99 %.2f vs %.2f ms" % (n, rps, ref[0], rps / ref[0], p50, ref[1], p99, ref[2]))
    if cmp_lines:
        lines += ["", "Medians over rounds:", ""] + cmp_lines
    text = "\n".join(lines) + "\n"
    with open(os.path.join(out, "summary.md"), "w") as f:
        f.write(text)
    sys.stdout.write(text)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else ".")

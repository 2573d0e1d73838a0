#!/usr/bin/env python3
"""Run Evidently's DataDriftPreset (default settings) on two CSV files and write a JSON summary.

    python3 evidently_drift.py --reference ref.csv --current cur.csv --json out.json

Every column except `id` and `ts` is compared. Evidently picks the stattest and
threshold for each column itself (we pass no method or threshold). The JSON holds
the Evidently version, wall-clock seconds (load, drift, total) and, per column,
the stattest, its threshold, the drift score and whether Evidently called it drift.
"""
import argparse
import json
import os
import time

os.environ.setdefault("DO_NOT_TRACK", "1")  # no usage telemetry from a benchmark

import pandas as pd  # noqa: E402
import evidently  # noqa: E402
from evidently import Report  # noqa: E402
from evidently.presets import DataDriftPreset  # noqa: E402

SKIPPED = {"id", "ts"}


def main() -> None:
    parser = argparse.ArgumentParser(description="Evidently DataDriftPreset benchmark")
    parser.add_argument("--reference", required=True)
    parser.add_argument("--current", required=True)
    parser.add_argument("--json", required=True, help="where to write the result")
    args = parser.parse_args()

    t0 = time.perf_counter()
    reference = pd.read_csv(args.reference)
    current = pd.read_csv(args.current)
    t1 = time.perf_counter()

    columns = [c for c in reference.columns if c not in SKIPPED]
    # include_tests=True makes Evidently attach its own per-column drift verdict
    # (a "drift" test that FAILs when the column drifted); it changes no defaults.
    report = Report([DataDriftPreset(columns=columns)], include_tests=True)
    result = report.run(current[columns], reference[columns]).dict()
    t2 = time.perf_counter()

    # ValueDrift metrics carry column, resolved stattest, threshold and score;
    # the tests point back to them by metric id.
    per_metric = {}
    for m in result["metrics"]:
        cfg = m["config"]
        if cfg["type"].endswith(":ValueDrift"):
            per_metric[m["id"]] = {"column": cfg["column"], "stattest": cfg.get("method"),
                                   "threshold": cfg.get("threshold"), "score": m["value"]}
        elif cfg["type"].endswith(":DriftedColumnsCount"):
            summary = {"drifted_columns": int(m["value"]["count"]), "drifted_share": m["value"]["share"],
                       "drift_share_threshold": cfg.get("drift_share")}
    for t in result["tests"]:
        entry = per_metric.get(t["metric_config"]["metric_id"])
        if entry is not None and t["id"] == "drift":
            entry["drift"] = t["status"] == "FAIL"
    t3 = time.perf_counter()

    out = {
        "tool": "evidently",
        "evidently_version": evidently.__version__,
        "pandas_version": pd.__version__,
        "reference": args.reference,
        "current": args.current,
        "rows": {"reference": len(reference), "current": len(current)},
        "seconds": {"load": t1 - t0, "drift": t2 - t1, "total": t3 - t0},
        **summary,
        "dataset_drift": summary["drifted_share"] >= summary["drift_share_threshold"],
        "columns": {e.pop("column"): e for e in per_metric.values()},
    }
    with open(args.json, "w") as f:
        json.dump(out, f, indent=2)
    for name, c in out["columns"].items():
        print(f"{name:10s} {c['stattest']:32s} score={c['score']:.6g} threshold={c['threshold']} drift={c['drift']}")
    s = out["seconds"]
    print(f"load {s['load']:.2f}s  drift {s['drift']:.2f}s  total {s['total']:.2f}s")


if __name__ == "__main__":
    main()

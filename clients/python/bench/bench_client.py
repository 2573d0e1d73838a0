"""Benchmarks of the Python client against a running node (docs/benchmarks.md, "Python client").

    python clients/python/bench/bench_client.py --node tcp://127.0.0.1:7400 --cli .build/release/infranaut

1. Rows per second from a pandas DataFrame to one node (`client.log`), against the Swift CLI
   pushing the same rows from a CSV file (`infranaut push`), same batch size, one after the other,
   each `--runs` times; medians and their ratio.
2. The cost of one `logger.log(row)` call, timed call by call while the logger's thread sends.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
import time
import uuid

import numpy as np
import pandas as pd

import infranaut


def frame(rows: int, seed: int) -> pd.DataFrame:
    random = np.random.default_rng(seed)
    data = {f"f{i}": random.normal(i, 1, rows) for i in range(10)}
    data["country"] = random.choice(["de", "fr", "br", "us"], rows)
    data["device"] = random.choice(["ios", "android", "web"], rows)
    data["score"] = random.uniform(0, 1, rows)
    return pd.DataFrame(data)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--node", default="tcp://127.0.0.1:7400")
    parser.add_argument("--cli", default=".build/release/infranaut")
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=5_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--calls", type=int, default=200_000)
    args = parser.parse_args()

    df = frame(args.rows, 1)
    client = infranaut.Client(args.node)
    with tempfile.TemporaryDirectory() as directory:
        csv = os.path.join(directory, "rows.csv")
        df.to_csv(csv, index=False)
        python_rates, cli_rates = [], []
        for run in range(args.runs):
            started = time.perf_counter()
            sent = client.log(f"bench-py-{uuid.uuid4().hex[:8]}", df, prediction_column="score", batch_rows=args.batch)
            python_rates.append(sent.rows_accepted / (time.perf_counter() - started))
            started = time.perf_counter()
            subprocess.run(
                [args.cli, "push", "--node", args.node, "--model", f"bench-cli-{uuid.uuid4().hex[:8]}", "--file", csv,
                 "--prediction-column", "score", "--batch-size", str(args.batch)],
                check=True, stdout=subprocess.DEVNULL)
            cli_rates.append(args.rows / (time.perf_counter() - started))
            print(f"run {run + 1}: python {python_rates[-1]:,.0f} rows/s, cli {cli_rates[-1]:,.0f} rows/s")
        py, cli = statistics.median(python_rates), statistics.median(cli_rates)
        print(f"DataFrame to one node: python median {py:,.0f} rows/s, Swift CLI median {cli:,.0f} rows/s, "
              f"CLI / python = {cli / py:.2f}")

    logger = client.logger(f"bench-logger-{uuid.uuid4().hex[:8]}", batch_rows=1_000, flush_interval=0.5,
                           max_queue=1_000_000)
    rows = [{"latency_ms": float(i % 500), "country": "de", "ok": True, "score": 0.5} for i in range(1_000)]
    costs = []
    clock = time.perf_counter_ns
    for i in range(args.calls):
        row = rows[i % 1_000]
        started = clock()
        logger.log(row)
        costs.append(clock() - started)
    logger.flush(120)
    costs.sort()
    def q(p: float) -> float:
        return costs[min(len(costs) - 1, int(p * len(costs)))] / 1000
    print(f"logger.log(row), {args.calls:,} calls: median {q(0.5):.2f} us, p99 {q(0.99):.2f} us, "
          f"p99.9 {q(0.999):.2f} us, max {costs[-1] / 1000:.0f} us; sent {logger.sent_rows:,}, "
          f"dropped {logger.dropped_rows}")
    logger.close()
    client.close()


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Write reference.csv and current.csv (500,000 rows x 8 columns each) for the drift benchmark.

Columns: f0..f5 numeric (normal, each with its own mean and scale), `segment`
(4 categories) and `flag` (2 values). In current.csv, f0 is shifted by +0.5 of
its std, f3 is scaled by 1.3, and `segment` gets a skewed mix; everything else
is drawn from the same distributions as the reference. Seeds are fixed, so the
files are identical on every run.

    python3 make_drift_files.py /tmp/driftbench [--rows 500000]
"""
import argparse
import os

import numpy as np
import pandas as pd

# (mean, std) per numeric column
NUMERIC = {"f0": (0.0, 1.0), "f1": (10.0, 2.0), "f2": (-5.0, 0.5),
           "f3": (100.0, 15.0), "f4": (0.0, 1000.0), "f5": (3.0, 0.01)}
SEGMENTS = ["north", "south", "east", "west"]
REF_SEGMENT_P = [0.25, 0.25, 0.25, 0.25]
CUR_SEGMENT_P = [0.40, 0.25, 0.20, 0.15]
FLAGS = ["yes", "no"]
FLAG_P = [0.3, 0.7]


def make(rows: int, seed: int, current: bool) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    data = {}
    for name, (mean, std) in NUMERIC.items():
        if current and name == "f0":
            mean += 0.5 * std
        if current and name == "f3":
            std *= 1.3
        data[name] = rng.normal(mean, std, rows)
    data["segment"] = rng.choice(SEGMENTS, rows, p=CUR_SEGMENT_P if current else REF_SEGMENT_P)
    data["flag"] = rng.choice(FLAGS, rows, p=FLAG_P)
    return pd.DataFrame(data)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("directory")
    parser.add_argument("--rows", type=int, default=500_000)
    args = parser.parse_args()
    os.makedirs(args.directory, exist_ok=True)
    for name, seed, current in (("reference.csv", 1, False), ("current.csv", 2, True)):
        path = os.path.join(args.directory, name)
        make(args.rows, seed, current).to_csv(path, index=False, float_format="%.6g")
        print(f"wrote {path}")


if __name__ == "__main__":
    main()

"""Infranaut from a notebook: declare a model, push a reference and one drifted day, and print the
features that drift.

    pip install "./clients/python[pandas]"
    infranaut start &                         # a node on tcp://127.0.0.1:7400
    python examples/pandas_quickstart.py      # INFRANAUT_NODE=tcp://HOST:PORT for another node
"""

import datetime as dt
import os

import numpy as np
import pandas as pd

import infranaut

DAY_MS = 86_400_000
MODEL = os.environ.get("QUICKSTART_MODEL", "quickstart-credit")

SPEC = f"""
apiVersion: infranaut.io/v1
kind: Model
metadata: {{name: {MODEL}}}
spec:
  task: binary-classification
  columns: {{id: request_id, timestamp: ts, prediction: score}}
  features:
    - {{name: income, type: numeric}}
    - {{name: age, type: numeric}}
    - {{name: channel, type: categorical}}
  window: {{size: 1d, lateness: 0}}
  reference: {{from: upload}}
"""


def day_of_requests(start_ms: int, rows: int, seed: int, drifted: bool) -> pd.DataFrame:
    random = np.random.default_rng(seed)
    income = random.lognormal(10.5, 0.4, rows) * (1.6 if drifted else 1.0)  # a new customer base
    age = random.normal(41, 12, rows)  # unchanged
    channel = random.choice(["web", "app", "branch"], rows, p=[0.2, 0.7, 0.1] if drifted else [0.5, 0.3, 0.2])
    return pd.DataFrame(
        {
            "request_id": [f"{start_ms}-{i}" for i in range(rows)],
            "ts": pd.to_datetime(start_ms + np.sort(random.integers(0, DAY_MS, rows)), unit="ms", utc=True),
            "income": income,
            "age": age,
            "channel": channel,
            "score": random.uniform(0, 1, rows),
        }
    )


def main() -> None:
    client = infranaut.Client(os.environ.get("INFRANAUT_NODE", "tcp://127.0.0.1:7400"))
    print(client.apply(SPEC))

    today = int(dt.datetime.now(dt.timezone.utc).timestamp() * 1000) // DAY_MS * DAY_MS
    reference = day_of_requests(today - 3 * DAY_MS, 5_000, seed=1, drifted=False)
    client.log_reference(MODEL, reference.drop(columns=["request_id", "ts"]), prediction_column="score")

    drifted_day = today - 2 * DAY_MS
    roles = dict(id_column="request_id", timestamp_column="ts", prediction_column="score")
    client.log(MODEL, day_of_requests(drifted_day, 5_000, seed=2, drifted=True), **roles)
    # The first request of the next day closes the drifted one.
    client.log(MODEL, day_of_requests(drifted_day + DAY_MS, 1, seed=3, drifted=False), **roles)

    windows = client.windows(MODEL)
    day = windows[windows["start"] == pd.Timestamp(drifted_day, unit="ms", tz="UTC")]
    print(day[["feature", "method", "score", "threshold", "drift"]].to_string(index=False))
    drifting = sorted(day[day["drift"]]["feature"])
    print("drifting features:", ", ".join(drifting) if drifting else "none")


if __name__ == "__main__":
    main()

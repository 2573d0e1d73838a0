"""The client against real nodes: logging from pandas, dicts and numpy, idempotent retries, labels,
specs applied through the node, windows read back, errors with the node's code, and failover
across nodes."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

import infranaut
from conftest import eventually

HOUR_MS = 3_600_000

SPEC = """
apiVersion: infranaut.io/v1
kind: Model
metadata: {name: %(name)s}
spec:
  task: binary-classification
  columns: {id: request_id, timestamp: ts, prediction: score}
  features:
    - {name: amount, type: numeric}
    - {name: country, type: categorical}
  window: {size: 1h, lateness: 0}
  reference: {from: upload}
"""


def frame(rows: int, start_ms: int, shift: float = 0.0, seed: int = 1, ids: str = "r") -> pd.DataFrame:
    random = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "request_id": [f"{ids}{i}" for i in range(rows)],
            "ts": pd.to_datetime(start_ms + np.arange(rows) * (HOUR_MS // rows), unit="ms", utc=True),
            "amount": random.normal(100 + shift, 10, rows),
            "country": random.choice(["de", "fr", "br"], rows),
            "score": random.uniform(0, 1, rows),
        }
    )


def test_log_from_pandas_dict_and_numpy_counts_every_row_once(start_cluster):
    node = start_cluster(1)[0]
    with infranaut.Client(node.address) as client:
        first = client.log("plain", {"a": [1.0, 2.0, None], "b": ["x", None, "z"], "c": [True, False, True]})
        assert first.rows_accepted == 3 and first.batches == 1
        table = np.array([(1.5, 2), (2.5, 3)], dtype=[("a", "f8"), ("d", "i4")])
        assert client.log("plain", table).rows_accepted == 2
        # Same key: the node applies the rows once and says it replayed them.
        df = frame(250, 0)
        once = client.log("plain", df, timestamp_column="ts", batch_rows=100, idempotency_key="day-1")
        again = client.log("plain", df, timestamp_column="ts", batch_rows=100, idempotency_key="day-1")
        assert once.batches == 3 and once.rows_accepted == 250
        assert again.replayed == 3
        status = client.status("plain")
        assert int(status["model"]["rows"]) == 3 + 2 + 250
        names = {f["name"] for f in status["model"]["features"]}
        assert {"a", "b", "c", "d", "amount", "country", "score", "request_id"} <= names


def test_errors_carry_the_node_code_and_change_nothing(start_cluster):
    node = start_cluster(1)[0]
    with infranaut.Client(node.address) as client:
        with pytest.raises(infranaut.InfranautError) as unknown:
            client.status("never-sent")
        assert unknown.value.code == "NOT_FOUND" and not unknown.value.retryable
        with pytest.raises(infranaut.InfranautError) as invalid:
            client.log("bad", {"a": [1.0, float("inf")], "": [1.0, 2.0]})
        assert invalid.value.code == "INVALID_ARGUMENT" and "name" in invalid.value.message
        with pytest.raises(infranaut.InfranautError):
            client.status("bad")
        with pytest.raises(ValueError, match="timestamp_column 'when' is not a column"):
            client.log("bad", {"a": [1.0]}, timestamp_column="when")


def test_apply_then_reference_and_a_drifted_hour_show_in_windows(start_cluster):
    node = start_cluster(1)[0]
    with infranaut.Client(node.address) as client:
        applied = client.apply(SPEC % {"name": "fraud-py"})
        assert applied == [{"kind": "Model", "name": "fraud-py", "outcome": "created"}]
        assert client.apply(SPEC % {"name": "fraud-py"})[0]["outcome"] == "unchanged"
        with pytest.raises(infranaut.InfranautError) as refused:
            client.apply((SPEC % {"name": "fraud-py"}).replace("size: 1h", "size: 1y"))
        assert refused.value.code == "INVALID_ARGUMENT"
        assert any(path == "spec.window.size" for path, _ in refused.value.problems), refused.value.problems
        # A few hundred bytes of aliases would expand to a billion nodes: refused before reading.
        bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
        with pytest.raises(infranaut.InfranautError) as aliased:
            client.apply(bomb)
        assert aliased.value.code == "INVALID_ARGUMENT" and "aliases" in aliased.value.message

        now = int(dt.datetime.now(dt.timezone.utc).timestamp() * 1000)
        t0 = (now // HOUR_MS - 5) * HOUR_MS
        client.log_reference("fraud-py", frame(2_000, t0 - HOUR_MS, seed=1).drop(columns=["request_id", "ts"]))
        client.log("fraud-py", frame(1_000, t0, shift=40, seed=2), id_column="request_id", timestamp_column="ts",
                   prediction_column="score")
        # The first row of the next hour closes the drifted one.
        client.log("fraud-py", frame(1, t0 + HOUR_MS, seed=3, ids="n"), id_column="request_id",
                   timestamp_column="ts", prediction_column="score")
        windows = client.windows("fraud-py")
        hour = windows[windows["start"] == pd.Timestamp(t0, unit="ms", tz="UTC")]
        assert set(hour["feature"]) >= {"amount", "country"}
        drifting = set(hour[hour["drift"]]["feature"])
        assert "amount" in drifting, hour[["feature", "method", "score", "drift"]]
        assert int(hour["rows"].iloc[0]) == 1_000


def test_labels_join_their_predictions_once(start_cluster):
    node = start_cluster(1)[0]
    with infranaut.Client(node.address) as client:
        client.apply(SPEC % {"name": "labelled"})
        now = int(dt.datetime.now(dt.timezone.utc).timestamp() * 1000)
        t0 = (now // HOUR_MS - 3) * HOUR_MS
        client.log("labelled", frame(100, t0, seed=4), id_column="request_id", timestamp_column="ts",
                   prediction_column="score")
        labels = pd.DataFrame({"request_id": [f"r{i}" for i in range(100)] + ["unknown"],
                               "is_fraud": [i % 2 == 0 for i in range(100)] + [True]})
        joined = client.log_labels("labelled", labels, id_column="request_id", label_column="is_fraud")
        assert joined.labels["joined"] == 100 and joined.labels["unknown_ids"] == 1
        again = client.log_labels("labelled", labels, id_column="request_id", label_column="is_fraud",
                                  idempotency_key="labels-2")
        assert again.labels["joined"] == 0 and again.labels["already_labelled"] == 100


def test_an_address_that_does_not_answer_is_skipped(start_cluster):
    node = start_cluster(1)[0]
    # Nothing listens on port 1: each call still lands on the live node, with the same key.
    with infranaut.Client(["tcp://127.0.0.1:1", node.address], timeout=2.0, attempts=6) as client:
        for i in range(5):
            assert client.log("failover", {"x": [float(i)]}, idempotency_key=f"k{i}").rows_accepted == 1
        assert eventually(lambda: int(client.status("failover")["model"]["rows"]) == 5)


def test_background_logger_sends_rows_from_many_threads_once(start_cluster):
    import threading

    node = start_cluster(1)[0]
    with infranaut.Client(node.address) as client:
        logger = client.logger("served", batch_rows=200, flush_interval=0.2)

        def serve(thread: int) -> None:
            for i in range(500):
                logger.log({"latency_ms": float(i), "thread": str(thread), "ok": i % 3 != 0})

        threads = [threading.Thread(target=serve, args=(t,)) for t in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert logger.flush(60)
        logger.close()
        assert (logger.sent_rows, logger.dropped_rows, logger.failed_rows) == (4_000, 0, 0), logger.last_error
        assert int(client.status("served")["model"]["rows"]) == 4_000
        with pytest.raises(infranaut.InfranautError):
            logger.log({"late": 1.0})


def test_logger_drop_policy_counts_rows_that_do_not_fit():
    client = infranaut.Client("tcp://127.0.0.1:1", timeout=0.5, attempts=1)
    logger = client.logger("nowhere", max_queue=10, policy="drop", batch_rows=1_000, flush_interval=60)
    taken = [logger.log({"x": 1.0}) for _ in range(15)]
    assert taken.count(False) == 5 and logger.dropped_rows == 5 and logger.queued == 10
    logger.close(timeout=0.5)
    client.close()


def test_the_asyncio_twin_awaits_the_same_calls(start_cluster):
    import asyncio

    node = start_cluster(1)[0]

    async def main():
        async with infranaut.AsyncClient(node.address) as client:
            sent = await client.log("async", {"x": [1.0, 2.0, 3.0]})
            status = await client.status("async")
            return sent, status

    sent, status = asyncio.run(main())
    assert sent.rows_accepted == 3 and int(status["model"]["rows"]) == 3


def test_the_pandas_quickstart_example_prints_the_drifting_features(start_cluster):
    import os
    import subprocess
    import sys
    from pathlib import Path

    node = start_cluster(1)[0]
    example = Path(__file__).resolve().parents[3] / "examples" / "pandas_quickstart.py"
    run = subprocess.run(
        [sys.executable, str(example)],
        env={**os.environ, "INFRANAUT_NODE": node.address},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    line = [l for l in run.stdout.splitlines() if l.startswith("drifting features:")]
    assert line, run.stdout
    drifting = line[0].split(":", 1)[1].strip().split(", ")
    assert "income" in drifting and "channel" in drifting and "age" not in drifting, run.stdout


def test_a_bad_row_costs_only_itself_and_the_logger_lives_on(start_cluster):
    node = start_cluster(1)[0]
    with infranaut.Client(node.address) as client:
        logger = client.logger("rough", timestamp_column="ts", batch_rows=10, flush_interval=0.2)
        with pytest.raises(TypeError):
            logger.log(["not", "a", "mapping"])
        for i in range(9):
            logger.log({"ts": 1_764_518_400_000 + i, "x": float(i)})
        logger.log({"ts": float("inf"), "x": 1.0})  # no time: fails alone
        assert logger.flush(30)
        for i in range(5):
            logger.log({"ts": 1_764_518_500_000 + i, "x": float(i)})
        assert logger.flush(30)
        logger.close()
        assert (logger.sent_rows, logger.failed_rows) == (14, 1), logger.last_error
        assert int(client.status("rough")["model"]["rows"]) == 14


def test_a_burst_of_threads_shares_a_bounded_pool_of_sockets(start_cluster):
    import threading

    node = start_cluster(1)[0]
    with infranaut.Client(node.address, max_sockets=4) as client:
        errors = []

        def one(i: int) -> None:
            try:
                client.log("burst", {"x": [float(i)]}, idempotency_key=f"b{i}")
            except Exception as error:  # noqa: BLE001
                errors.append(error)

        threads = [threading.Thread(target=one, args=(i,)) for i in range(60)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors[:3]
        assert len(client._all_sockets) <= 4
        assert int(client.status("burst")["model"]["rows"]) == 60

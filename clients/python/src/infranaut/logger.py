"""Background logging for serving code: rows from many threads, sent in columnar batches.

``Client.logger(model)`` gives a ``BackgroundLogger``. ``log(row)`` only appends the row to a
bounded queue (a few microseconds); one thread turns the queue into batches of ``batch_rows`` rows,
or whatever came within ``flush_interval`` seconds, and sends each with its own idempotency key.
A batch the node answers retryably, or does not answer, is sent again with the same key (to the
next node) until it is taken, so a row is applied once. A batch the node refuses as invalid is
dropped and counted in ``failed_rows`` (its error kept in ``last_error``): sending it again would
fail again.

When the queue is full, ``policy`` decides: ``"block"`` waits (up to ``block_timeout`` seconds,
then drops and counts), ``"drop"`` drops the row at once and counts it in ``dropped_rows``. The
queue is flushed on ``close()``, on ``with`` exit and when the interpreter exits (for up to
``exit_timeout`` seconds; rows still queued then are counted in ``dropped_rows``).

A row that cannot be sent (a value of no known type, a time that is not a time) is counted in
``failed_rows`` on its own; the rest of its batch is sent. The sending thread survives any error.
"""

from __future__ import annotations

import atexit
import threading
import time
import uuid
import weakref
from collections import deque
from typing import Any, Deque, Mapping, Optional

from infranaut import batch as _batch
from infranaut.errors import InfranautError


class BackgroundLogger:
    def __init__(
        self,
        client: Any,
        model: str,
        *,
        id_column: Optional[str] = None,
        timestamp_column: Optional[str] = None,
        prediction_column: Optional[str] = None,
        label_column: Optional[str] = None,
        version: Optional[str] = None,
        batch_rows: int = 1_000,
        flush_interval: float = 1.0,
        max_queue: int = 100_000,
        policy: str = "block",
        block_timeout: float = 5.0,
        exit_timeout: float = 10.0,
    ) -> None:
        if policy not in ("block", "drop"):
            raise ValueError(f"policy is block or drop, not {policy!r}")
        if not model:
            raise ValueError("a model id is required")
        self.client = client
        self.model = model
        self.options = dict(
            id_column=id_column,
            timestamp_column=timestamp_column,
            prediction_column=prediction_column,
            label_column=label_column,
            version=version,
        )
        self.batch_rows = max(1, batch_rows)
        self.flush_interval = flush_interval
        self.max_queue = max(1, max_queue)
        self.policy = policy
        self.block_timeout = block_timeout
        self.exit_timeout = exit_timeout
        self._rows: Deque[Mapping[str, Any]] = deque()
        self._lock = threading.Lock()
        self._has_rows = threading.Condition(self._lock)
        self._has_room = threading.Condition(self._lock)
        self._idle = threading.Condition(self._lock)
        self._in_flight = 0
        self._closing = False
        #: Rows the node took, rows dropped because the queue was full, rows in batches the node
        #: refused, and batches sent again after a retryable answer or no answer.
        self.sent_rows = 0
        self.dropped_rows = 0
        self.failed_rows = 0
        self.resent_batches = 0
        self.last_error: Optional[BaseException] = None
        self._thread = threading.Thread(target=self._run, name=f"infranaut-logger-{model}", daemon=True)
        self._thread.start()
        _open_loggers.add(self)

    def log(self, row: Mapping[str, Any]) -> bool:
        """Queues one row (a mapping of column names to values); False when it was dropped."""
        if not isinstance(row, Mapping):
            raise TypeError(f"a row is a mapping of column names to values, not {type(row).__name__}")
        with self._lock:
            if self._closing:
                raise InfranautError("INVALID_ARGUMENT", "the logger is closed")
            if len(self._rows) >= self.max_queue:
                if self.policy == "drop":
                    self.dropped_rows += 1
                    return False
                deadline = time.monotonic() + self.block_timeout
                while len(self._rows) >= self.max_queue and not self._closing:
                    left = deadline - time.monotonic()
                    if left <= 0 or not self._has_room.wait(left):
                        if len(self._rows) >= self.max_queue:
                            self.dropped_rows += 1
                            return False
            self._rows.append(row)
            if len(self._rows) >= self.batch_rows:
                self._has_rows.notify()
            return True

    def flush(self, timeout: Optional[float] = None) -> bool:
        """Waits until every row queued so far was sent (or given up); False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            self._has_rows.notify()
            while self._rows or self._in_flight:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._idle.wait(left if left is not None else 0.5)
                self._has_rows.notify()
        return True

    def close(self, timeout: Optional[float] = 60.0) -> None:
        """Sends what is queued (for up to `timeout` seconds) and stops the thread; rows still
        queued after that are counted in ``dropped_rows``."""
        with self._lock:
            if self._closing:
                return
        self.flush(timeout)
        with self._lock:
            self._closing = True
            self.dropped_rows += len(self._rows)
            self._rows.clear()
            self._has_rows.notify_all()
            self._has_room.notify_all()
        _open_loggers.discard(self)
        self._thread.join(timeout)

    def __enter__(self) -> "BackgroundLogger":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @property
    def queued(self) -> int:
        with self._lock:
            return len(self._rows)

    def _take(self) -> list:
        with self._lock:
            started = time.monotonic()
            while not self._closing and len(self._rows) < self.batch_rows:
                left = self.flush_interval - (time.monotonic() - started)
                if left <= 0:
                    break
                self._has_rows.wait(left)
            count = min(len(self._rows), self.batch_rows)
            rows = [self._rows.popleft() for _ in range(count)]
            self._in_flight += len(rows)
            if rows:
                self._has_room.notify_all()
            return rows

    def _run(self) -> None:
        while True:
            rows = self._take()
            if rows:
                try:
                    self._send(rows)
                except Exception as error:  # noqa: BLE001 - the thread must outlive any row
                    self.failed_rows += len(rows)
                    self.last_error = error
                finally:
                    with self._lock:
                        self._in_flight -= len(rows)
                        self._idle.notify_all()
            else:
                with self._lock:
                    self._idle.notify_all()
                    if self._closing and not self._rows:
                        return

    def _batches(self, rows: list) -> list:
        """The rows as batches; when they do not convert together, row by row, so one bad row
        costs only itself."""
        try:
            return list(_batch.batches(self.model, _batch.rows_to_columns(rows), batch_rows=len(rows), **self.options))
        except Exception as error:  # noqa: BLE001 - any conversion failure is the rows' fault
            if len(rows) == 1:
                self.failed_rows += 1
                self.last_error = error
                return []
        good = []
        for row in rows:
            try:
                list(_batch.batches(self.model, _batch.rows_to_columns([row]), **self.options))
                good.append(row)
            except Exception as error:  # noqa: BLE001
                self.failed_rows += 1
                self.last_error = error
        if not good:
            return []
        try:
            return list(_batch.batches(self.model, _batch.rows_to_columns(good), batch_rows=len(good), **self.options))
        except Exception as error:  # noqa: BLE001 - rows that convert alone but not together
            self.failed_rows += len(good)
            self.last_error = error
            return []

    def _send(self, rows: list) -> None:
        for one in self._batches(rows):
            key = uuid.uuid4().hex
            pause = 0.1
            while True:
                try:
                    answer = self.client.ingest(one, idempotency_key=key)
                    self.sent_rows += answer.rows_accepted
                    break
                except InfranautError as error:
                    self.last_error = error
                    if not error.retryable:
                        self.failed_rows += one.row_count
                        break
                    # Every node was tried: wait, then the same key again (applied once). Closing
                    # gives up after its timeout; the rows are then counted as dropped.
                    with self._lock:
                        if self._closing:
                            self.dropped_rows += one.row_count
                            return
                    self.resent_batches += 1
                    time.sleep(pause)
                    pause = min(5.0, pause * 2)


#: Loggers not yet closed, flushed when the interpreter exits (weakly held: a logger nobody
#: references any more is not kept alive by this).
_open_loggers: "weakref.WeakSet[BackgroundLogger]" = weakref.WeakSet()


@atexit.register
def _close_open_loggers() -> None:
    for logger in list(_open_loggers):
        logger.close(timeout=logger.exit_timeout)

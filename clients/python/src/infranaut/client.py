"""A synchronous client for Infranaut nodes (docs/protocol.md).

Each call sends one ``Request`` to a node's client listener over an nng REQ socket and reads one
``Response``. Answers the node marks retryable, and requests that got no answer, are sent again
with the same bytes (so an ingest keeps its idempotency key) to the next node, with a growing
pause, up to ``attempts`` times; then the last error is raised. Nothing is swallowed.
"""

from __future__ import annotations

import queue
import random
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Optional, Sequence, Union

import pynng

from infranaut import batch as _batch
from infranaut.errors import InfranautError, TransportError
from infranaut.v1 import admin_pb2, common_pb2, envelope_pb2, models_pb2, telemetry_pb2

#: Bodies of a Response whose status is not in a ``status`` field.
_NO_STATUS = {"raft", "raft_snapshot"}


def status_of(response: envelope_pb2.Response) -> common_pb2.Status:
    """The status that answers a request: the frame-level error, else the one in the body."""
    which = response.WhichOneof("body")
    if which is None:
        return common_pb2.Status(code=common_pb2.INTERNAL, message="the node sent an empty response")
    if which == "error":
        return response.error
    if which in _NO_STATUS:
        return common_pb2.Status(code=common_pb2.OK)
    return getattr(response, which).status


def code_name(code: int) -> str:
    try:
        return common_pb2.StatusCode.Name(code)
    except ValueError:
        return f"STATUS_{code}"


@dataclass
class IngestResult:
    """What the node answered for the batches of one ``log`` call, added up."""

    rows_accepted: int = 0
    batches: int = 0
    replayed: int = 0
    type_mismatches: int = 0
    #: For labels: joined, unusable, unknown ids, already labelled, missing.
    labels: Dict[str, int] = field(default_factory=dict)


def _address_list(nodes: Union[str, Sequence[str]]) -> List[str]:
    found = [nodes] if isinstance(nodes, str) else list(nodes)
    if not found:
        raise ValueError("give at least one node address, such as tcp://127.0.0.1:7400")
    for address in found:
        if not isinstance(address, str) or "://" not in address:
            raise ValueError(f"not a node address: {address!r} (expected tcp://HOST:PORT)")
    return found


class Client:
    """Talks to one or more nodes of a cluster; any node serves any request.

    ``timeout`` is how long one attempt waits for its answer (seconds; above the node's 30 s so a
    slow ingest comes back as the node's ``DEADLINE_EXCEEDED``). ``attempts`` bounds the sends of
    one request across nodes. A client may be used from many threads: they share a pool of at
    most ``max_sockets`` sockets per node (a thread waits for one when all are busy), so a burst of
    threads never opens more connections than that.
    """

    def __init__(
        self,
        nodes: Union[str, Sequence[str]],
        *,
        timeout: float = 35.0,
        attempts: int = 8,
        max_message_bytes: int = 64 << 20,
        max_sockets: int = 8,
    ) -> None:
        self.nodes = _address_list(nodes)
        self.timeout = timeout
        self.attempts = max(1, attempts)
        self.max_message_bytes = max_message_bytes
        self.max_sockets = max(1, max_sockets)
        # Per address: idle sockets, and a bound on how many exist.
        self._idle: Dict[str, "queue.LifoQueue[pynng.Req0]"] = {a: queue.LifoQueue() for a in self.nodes}
        self._slots: Dict[str, threading.BoundedSemaphore] = {
            a: threading.BoundedSemaphore(self.max_sockets) for a in self.nodes
        }
        self._all_sockets: List[pynng.Req0] = []
        self._lock = threading.Lock()
        self._next = random.randrange(len(self.nodes))
        self._closed = False

    # -- transport -------------------------------------------------------------------------

    def _acquire(self, address: str) -> pynng.Req0:
        """An idle socket to `address`, or a new one while fewer than `max_sockets` exist; waits
        up to the timeout for one to come back otherwise."""
        if not self._slots[address].acquire(timeout=self.timeout):
            raise TransportError(f"all {self.max_sockets} sockets to the node stayed busy", node=address)
        if self._closed:
            self._slots[address].release()
            raise InfranautError("INVALID_ARGUMENT", "the client is closed")
        try:
            return self._idle[address].get_nowait()
        except queue.Empty:
            pass
        try:
            # resend_time -1: nng never re-sends by itself; this client retries (docs/protocol.md,
            # "Resend").
            sock = pynng.Req0(
                recv_timeout=int(self.timeout * 1000),
                send_timeout=int(self.timeout * 1000),
                resend_time=-1,
                recv_max_size=self.max_message_bytes,
            )
            sock.dial(address, block=False)
        except BaseException:
            self._slots[address].release()
            raise
        with self._lock:
            self._all_sockets.append(sock)
        return sock

    def _release(self, address: str, sock: pynng.Req0, broken: bool) -> None:
        """Gives a socket back; a broken one (no answer came) is closed instead: a REQ socket
        whose answer is still due would match the next request's answer to the old one."""
        if broken or self._closed:
            with self._lock:
                if sock in self._all_sockets:
                    self._all_sockets.remove(sock)
            sock.close()
        else:
            self._idle[address].put(sock)
        self._slots[address].release()

    def request(self, body: str, message: Any, *, attempts: Optional[int] = None) -> Any:
        """Sends ``message`` as the request body ``body`` (``"status"``, ``"ingest"``, ...) and
        returns the answer's body, retrying retryable answers and silences on the next node."""
        request = envelope_pb2.Request(version=1, timeout_ms=int(min(self.timeout, 30.0) * 1000))
        getattr(request, body).CopyFrom(message)
        payload = request.SerializeToString()
        last: Optional[InfranautError] = None
        tries = attempts or self.attempts
        for attempt in range(tries):
            with self._lock:
                address = self.nodes[self._next % len(self.nodes)]
            try:
                sock = self._acquire(address)
            except TransportError as error:
                last = error
                self._rotate()
                continue
            try:
                sock.send(payload)
                reply = sock.recv()
            except pynng.exceptions.NNGException as error:
                self._release(address, sock, broken=True)
                last = TransportError(f"no answer: {error}", node=address)
                self._rotate()
                self._pause(attempt, 0)
                continue
            self._release(address, sock, broken=False)
            response = envelope_pb2.Response()
            try:
                response.ParseFromString(reply)
            except Exception as error:  # noqa: BLE001 - a garbled answer is the node's fault
                raise InfranautError("INTERNAL", f"the answer did not decode: {error}", node=address)
            status = status_of(response)
            if status.code == common_pb2.OK:
                which = response.WhichOneof("body")
                return getattr(response, which)
            which = response.WhichOneof("body")
            body_answer = getattr(response, which) if which else None
            problems = [(p.path, p.message) for p in getattr(body_answer, "problems", [])]
            last = InfranautError(
                code_name(status.code),
                status.message,
                retryable=status.retryable
                or status.code
                in (common_pb2.UNAVAILABLE, common_pb2.DEADLINE_EXCEEDED, common_pb2.RESOURCE_EXHAUSTED),
                retry_after_ms=status.retry_after_ms,
                node=address,
                problems=problems,
            )
            if not last.retryable:
                raise last
            self._rotate()
            self._pause(attempt, status.retry_after_ms)
        assert last is not None
        raise last

    def _rotate(self) -> None:
        with self._lock:
            self._next = (self._next + 1) % len(self.nodes)

    @staticmethod
    def _pause(attempt: int, retry_after_ms: int) -> None:
        wait = min(2.0, 0.05 * (2**attempt))
        time.sleep(max(wait * (0.5 + random.random() / 2), retry_after_ms / 1000))

    def close(self) -> None:
        """Closes every socket the client opened, in every thread."""
        with self._lock:
            self._closed = True
            sockets, self._all_sockets = self._all_sockets, []
        for sock in sockets:
            sock.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- telemetry -------------------------------------------------------------------------

    def ingest(self, batch: telemetry_pb2.TelemetryBatch, *, idempotency_key: Optional[str] = None):
        """Sends one batch with its idempotency key (a new one when not given) and returns the
        node's ``IngestResponse``. Retries reuse the key, so the batch is applied once."""
        key = idempotency_key or uuid.uuid4().hex
        return self.request("ingest", telemetry_pb2.IngestRequest(idempotency_key=key, batch=batch))

    def _log(self, model: str, data: Any, *, key_prefix: Optional[str], **options: Any) -> IngestResult:
        result = IngestResult()
        prefix = key_prefix or uuid.uuid4().hex
        for index, one in enumerate(_batch.batches(model, data, **options)):
            answer = self.ingest(one, idempotency_key=f"{prefix}-{index}")
            result.batches += 1
            result.rows_accepted += answer.rows_accepted
            result.replayed += int(answer.replayed)
            result.type_mismatches += answer.type_mismatch_count
            if answer.HasField("labels"):
                for name in ("joined", "unusable", "unknown_ids", "already_labelled", "missing"):
                    result.labels[name] = result.labels.get(name, 0) + getattr(answer.labels, name)
        return result

    def log(
        self,
        model: str,
        data: Any,
        *,
        id_column: Optional[str] = None,
        timestamp_column: Optional[str] = None,
        prediction_column: Optional[str] = None,
        label_column: Optional[str] = None,
        version: Optional[str] = None,
        idempotency_key: Optional[str] = None,
        batch_rows: int = _batch.DEFAULT_BATCH_ROWS,
    ) -> IngestResult:
        """Sends live traffic: a pandas DataFrame, a dict of columns or a numpy structured array.
        ``idempotency_key`` names the call: sending the same rows again with the same key applies
        them once (batch i gets ``KEY-i``)."""
        return self._log(
            model,
            data,
            key_prefix=idempotency_key,
            id_column=id_column,
            timestamp_column=timestamp_column,
            prediction_column=prediction_column,
            label_column=label_column,
            version=version,
            batch_rows=batch_rows,
        )

    def log_reference(
        self,
        model: str,
        data: Any,
        *,
        version: Optional[str] = None,
        prediction_column: Optional[str] = None,
        label_column: Optional[str] = None,
        idempotency_key: Optional[str] = None,
        batch_rows: int = _batch.DEFAULT_BATCH_ROWS,
    ) -> IngestResult:
        """Sends the model's reference data (for ``version``), which windows are compared with."""
        return self._log(
            model,
            data,
            key_prefix=idempotency_key,
            prediction_column=prediction_column,
            label_column=label_column,
            version=version,
            reference=True,
            batch_rows=batch_rows,
        )

    def log_labels(
        self,
        model: str,
        data: Any,
        *,
        id_column: str,
        label_column: str,
        idempotency_key: Optional[str] = None,
        batch_rows: int = _batch.DEFAULT_BATCH_ROWS,
    ) -> IngestResult:
        """Sends true labels for predictions logged earlier with ids; ``result.labels`` counts
        how many joined, were unknown or were labelled already."""
        return self._log(
            model,
            data,
            key_prefix=idempotency_key,
            id_column=id_column,
            label_column=label_column,
            labels=True,
            batch_rows=batch_rows,
        )

    def logger(self, model: str, **options: Any):
        """A ``BackgroundLogger`` for serving code: ``logger.log(row)`` queues one row and returns
        at once; a thread sends the rows in batches (see ``infranaut.logger``)."""
        from infranaut.logger import BackgroundLogger

        return BackgroundLogger(self, model, **options)

    # -- reading ---------------------------------------------------------------------------

    def status(self, model: str) -> Dict[str, Any]:
        """The model's status as a dict (rows, batches, features with their profiles)."""
        from google.protobuf.json_format import MessageToDict

        answer = self.request("status", admin_pb2.StatusRequest(model_id=model))
        return MessageToDict(answer, preserving_proto_field_name=True)

    def windows_response(
        self,
        model: str,
        *,
        last: int = 0,
        version: Optional[str] = None,
        include_open: bool = False,
        whole_model_only: bool = True,
    ) -> models_pb2.WindowsResponse:
        """The model's windows as the node sends them (``WindowsResponse``)."""
        request = models_pb2.WindowsRequest(
            model_id=model, last=last, include_open=include_open, whole_model_only=whole_model_only
        )
        if version is not None:
            request.version = version
            request.filter_version = True
        return self.request("windows", request)

    def windows(self, model: str, *, last: int = 0, version: Optional[str] = None, include_open: bool = False):
        """The model's whole-model windows as a pandas DataFrame, one row per window and feature:
        start, end, version, open, rows, drift_share, dataset_drift, and the feature's name,
        type, method, score, threshold, drift, missing_rate and the share of values out of
        range. Needs pandas."""
        import pandas as pd

        from infranaut.frames import window_rows

        answer = self.windows_response(model, last=last, version=version, include_open=include_open)
        return pd.DataFrame(window_rows(answer))

    def apply(self, spec: str, *, dry_run: bool = False) -> List[Dict[str, Any]]:
        """Applies a spec file (a path) or its YAML text: models and notification channels, as
        ``infranaut apply`` does. The node reads and checks the YAML; a spec with problems raises
        ``InfranautError`` with ``problems`` and changes nothing."""
        text = spec
        if "\n" not in spec and not spec.lstrip().startswith(("apiVersion", "{", "---")):
            with open(spec, "r", encoding="utf-8") as handle:
                text = handle.read()
        answer = self.request("apply_documents", models_pb2.ApplyDocumentsRequest(yaml=text, dry_run=dry_run))
        return [
            {"kind": o.kind, "name": o.name, "outcome": o.outcome}
            for o in answer.objects
        ]

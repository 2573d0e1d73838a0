"""Errors the client raises: every failure carries the node's status code and message."""

from __future__ import annotations

from typing import Optional


class InfranautError(Exception):
    """A request the node refused or could not serve.

    ``code`` is the node's status code name (``"INVALID_ARGUMENT"``, ``"UNAVAILABLE"``, ...),
    ``message`` its explanation, ``retryable`` whether the same request may be sent again (the
    client already retried those up to its limit), and ``node`` the address that answered last.
    """

    def __init__(
        self,
        code: str,
        message: str,
        *,
        retryable: bool = False,
        retry_after_ms: int = 0,
        node: Optional[str] = None,
        problems: Optional[list] = None,
    ) -> None:
        self.code = code
        self.message = message
        self.retryable = retryable
        self.retry_after_ms = retry_after_ms
        self.node = node
        #: For a spec the node refused: ``(path, message)`` pairs.
        self.problems = problems or []
        where = f" ({node})" if node else ""
        super().__init__(f"{code}: {message}{where}")


class TransportError(InfranautError):
    """No answer: the node could not be reached or did not reply in time. The request may or
    may not have been applied; an ingest retried with the same idempotency key is applied once."""

    def __init__(self, message: str, *, node: Optional[str] = None) -> None:
        super().__init__("UNAVAILABLE", message, retryable=True, node=node)

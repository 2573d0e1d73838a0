"""The asyncio twin of ``Client``: the same calls, awaited. Each call runs the synchronous client
in a worker thread (``asyncio.to_thread``), so an event loop is never blocked by the network."""

from __future__ import annotations

import asyncio
import functools
from typing import Any, Sequence, Union

from infranaut.client import Client


class AsyncClient:
    def __init__(self, nodes: Union[str, Sequence[str]], **options: Any) -> None:
        self._client = Client(nodes, **options)

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._client, name)
        if name in ("logger", "close") or not callable(method):
            return method

        @functools.wraps(method)
        async def call(*args: Any, **kwargs: Any) -> Any:
            return await asyncio.to_thread(method, *args, **kwargs)

        return call

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self._client.close()

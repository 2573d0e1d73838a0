"""Infranaut's Python client: log model telemetry, reference data and labels to an Infranaut
cluster, apply specs, and read status and windows back.

    import infranaut
    client = infranaut.Client(["tcp://10.0.0.5:7400", "tcp://10.0.0.6:7400"])
    client.log("fraud-v1", df, id_column="request_id", timestamp_column="ts",
               prediction_column="score", version="2024-06")
"""

from infranaut.aio import AsyncClient
from infranaut.client import Client, IngestResult
from infranaut.errors import InfranautError, TransportError
from infranaut.logger import BackgroundLogger

__all__ = ["AsyncClient", "BackgroundLogger", "Client", "IngestResult", "InfranautError", "TransportError"]
__version__ = "0.1.0"

"""Real node processes for the tests: the `infranaut` binary this repository builds.

The binary is $INFRANAUT_BIN, else the repository's release build, else its debug build.
"""

from __future__ import annotations

import os
import re
import select
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Callable, List, Optional

import pytest

ROOT = Path(__file__).resolve().parents[3]


def node_binary() -> str:
    given = os.environ.get("INFRANAUT_BIN")
    if given:
        return given
    for kind in ("release", "debug"):
        candidate = ROOT / ".build" / kind / "infranaut"
        if candidate.exists():
            return str(candidate)
    pytest.skip("no infranaut binary: build it (swift build) or set INFRANAUT_BIN")
    raise AssertionError  # unreachable


class Node:
    """One node process on free loopback ports; `address` is its client listener."""

    def __init__(self, binary: str, directory: Path, node_id: str, seed: Optional["Node"] = None) -> None:
        self.directory = directory
        self.log_path = directory.with_suffix(".log")
        arguments = [
            binary, "start", "--data-dir", str(directory), "--node-id", node_id,
            "--client-listen", "tcp://127.0.0.1:0", "--cluster-listen", "tcp://127.0.0.1:0",
            "--peer-listen", "tcp://127.0.0.1:0", "--http-listen", "127.0.0.1:0", "--shards", "16",
        ]
        if seed is not None:
            arguments += ["--seed", seed.cluster_address, "--cluster-secret-file", str(seed.directory / "cluster-secret")]
        self.log = open(self.log_path, "wb")
        self.process = subprocess.Popen(arguments, stdout=subprocess.PIPE, stderr=self.log)
        self.address, self.cluster_address = self._wait_ready()

    def _wait_ready(self, within: float = 30.0):
        deadline = time.monotonic() + within
        seen = b""
        assert self.process.stdout is not None
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.process.stdout], [], [], 0.2)
            if ready:
                chunk = os.read(self.process.stdout.fileno(), 4096)
                if not chunk:
                    break
                seen += chunk
                text = seen.decode("utf-8", "replace")
                client = re.search(r"serving on (tcp://[0-9.]+:[0-9]+)", text)
                cluster = re.search(r"cluster (tcp://[0-9.]+:[0-9]+)", text)
                if client and cluster:
                    return client.group(1), cluster.group(1)
            if self.process.poll() is not None:
                break
        self.stop()
        raise RuntimeError(f"the node did not report ready; its log:\n{self.log_path.read_text(errors='replace')}")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


@pytest.fixture
def start_cluster(tmp_path: Path) -> Callable[[int], List[Node]]:
    """Starts `n` nodes (the first forms the cluster, the others join it); all are stopped at the
    end of the test."""
    binary = node_binary()
    started: List[Node] = []

    def start(n: int = 1) -> List[Node]:
        nodes: List[Node] = []
        for index in range(n):
            node = Node(binary, tmp_path / f"node-{len(started)}", f"py{len(started)}", seed=nodes[0] if nodes else None)
            started.append(node)
            nodes.append(node)
        return nodes

    yield start
    for node in started:
        node.stop()


def eventually(condition: Callable[[], bool], within: float = 30.0, every: float = 0.1) -> bool:
    """Waits until `condition()` is true (then True) or `within` seconds passed (then False)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(every)
    return condition()

#!/usr/bin/env bash
# Regenerates the Python client's protobuf modules (clients/python/src/infranaut/v1) from proto/.
# Needs protoc (Debian: protobuf-compiler). The modules are committed; CI regenerates them and
# fails when they differ from the committed ones.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="$root/clients/python/src"
rm -f "$out"/infranaut/v1/*_pb2.py
mkdir -p "$out/infranaut/v1"
# The package is `infranaut`, so the generated `from infranaut.v1 import ...` lines resolve
# inside it. Peer-only schemas (consensus, replication, storage) come along because envelope
# imports them.
protoc -I "$root/proto" --python_out="$out" "$root"/proto/infranaut/v1/*.proto
cat > "$out/infranaut/v1/__init__.py" <<'PY'
"""Generated from proto/infranaut/v1 by scripts/generate-python-protos.sh; do not edit."""
PY
echo "generated: $(ls "$out/infranaut/v1" | tr '\n' ' ')"

#!/usr/bin/env bash
# The Python client (clients/python): its generated protobuf modules must match proto/, and its
# tests run against real nodes of this build (scripts/test.sh builds it first).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! python3 -m venv --help >/dev/null 2>&1; then
    sudo_cmd=""
    if [[ $(id -u) -ne 0 ]]; then sudo_cmd="sudo"; fi
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq python3-venv python3-pip
fi

# Generated modules: regenerate aside and compare with the committed ones.
fresh="$(mktemp -d)"
trap 'rm -rf "$fresh"' EXIT
protoc -I proto --python_out="$fresh" proto/infranaut/v1/*.proto
for module in "$fresh"/infranaut/v1/*_pb2.py; do
    if ! cmp -s "$module" "clients/python/src/infranaut/v1/$(basename "$module")"; then
        echo "error: clients/python/src/infranaut/v1/$(basename "$module") is not what proto/ generates; run scripts/generate-python-protos.sh" >&2
        exit 1
    fi
done

venv=.build/python-venv
[[ -x "$venv/bin/python" ]] || python3 -m venv "$venv"
"$venv/bin/pip" install -q --upgrade pip
"$venv/bin/pip" install -q "./clients/python[test]"
INFRANAUT_BIN="$PWD/.build/debug/infranaut" timeout -k 30 900 "$venv/bin/python" -m pytest -q clients/python/tests

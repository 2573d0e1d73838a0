#!/usr/bin/env bash
# Formats every hand-written Swift file with the repository's .swift-format (generated protobuf
# code stays as protoc-gen-swift writes it). scripts/test.sh checks the same files with `lint`.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/opt/swift/usr/bin:$PATH"
mode="${1:-format}"
mapfile -d '' files < <(find Sources Tests -name '*.swift' -not -path '*/Generated/*' -print0 | sort -z)
if [[ "$mode" == "--check" ]]; then
    swift format lint --strict --parallel "${files[@]}"
else
    swift format -i --parallel "${files[@]}"
fi

#!/usr/bin/env bash
# Regenerates Sources/Wire/Generated from proto/. Needs protoc (Debian: protobuf-compiler) and
# protoc-gen-swift built from swift-protobuf at the version Package.swift resolves: clone the
# swift-protobuf repository Package.swift names, then
#   git checkout 1.39.0 && swift build -c release --product protoc-gen-swift
# and point PROTOC_GEN_SWIFT at .build/release/protoc-gen-swift.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
plugin="${PROTOC_GEN_SWIFT:-$(command -v protoc-gen-swift || true)}"
if [[ -z "$plugin" || ! -x "$plugin" ]]; then
    echo "error: protoc-gen-swift not found; set PROTOC_GEN_SWIFT (see the comment at the top of $0)" >&2
    exit 1
fi
out="$root/Sources/Wire/Generated"
rm -rf "$out"
mkdir -p "$out"
protoc --plugin=protoc-gen-swift="$plugin" \
    --swift_out="$out" --swift_opt=Visibility=Public --swift_opt=FileNaming=PathToUnderscores --swift_opt=UseAccessLevelOnImports=true \
    -I "$root/proto" "$root"/proto/infranaut/v1/*.proto
echo "generated: $(ls "$out" | tr '\n' ' ')"

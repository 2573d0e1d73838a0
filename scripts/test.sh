#!/usr/bin/env bash
# Installs what is needed, builds everything (warnings are errors) and runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/opt/swift/usr/bin:$PATH"
scripts/setup.sh
swift build --build-tests -Xswiftc -warnings-as-errors
# A hang must fail the run, not eat CI's time: the whole suite takes well under a minute.
timeout -k 30 1200 swift test --skip-build

#!/usr/bin/env bash
# Installs the Debian packages Infranaut builds on (only those missing). Swift 6 must already be
# on PATH (https://www.swift.org/install/linux/).
set -euo pipefail
# nng is built from source by install-nng.sh (Debian's 1.5.2 hangs in nng_close); cmake and curl
# are what that build needs.
# prometheus (with promtool) is for the tests of the metrics and the shipped rules.
packages=(librocksdb-dev libprotobuf-c-dev protobuf-compiler protobuf-c-compiler cmake curl pkg-config prometheus)
missing=()
for p in "${packages[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
    echo "installing: ${missing[*]}"
    sudo_cmd=""
    if [[ $(id -u) -ne 0 ]]; then sudo_cmd="sudo"; fi
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}"
fi
if ! command -v swift >/dev/null 2>&1; then
    if [[ -x /opt/swift/usr/bin/swift ]]; then
        echo "note: add /opt/swift/usr/bin to PATH" >&2
    else
        echo "error: swift not found; install Swift 6 from https://www.swift.org/install/linux/" >&2
        exit 1
    fi
fi
"$(dirname "$0")/install-nng.sh"

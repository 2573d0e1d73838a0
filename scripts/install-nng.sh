#!/usr/bin/env bash
# Builds and installs nng 1.11.0 as a static library under /usr/local, named libinfranaut_nng.a so
# that the linker can never pick up a system libnng.so instead, with a pkg-config file
# (infranaut-nng.pc) that Package.swift's CNNG target uses.
#
# Why not Debian's libnng-dev: bookworm ships nng 1.5.2, whose nng_close can hang forever when a
# socket is closed while a peer's request is outstanding (nng issues #1543 and #1813, fixed in
# 1.8.0: the reaper thread waits for an aio task that was prepared but never started, and every
# later close in the process then waits behind it). Our CI hung on exactly that; see
# docs/transport.md. Debian's newer builds need glibc 2.38, so we build from source.
#
# Where the source comes from: the nng tree vendored in the pynng 0.9.0 source distribution,
# fetched with `pip download` through whatever package index pip is configured to use (pip.conf,
# PIP_INDEX_URL: every build machine here reaches one), and checked against its published sha256
# whichever index served it. Nothing of nng is committed to this repository.
set -euo pipefail

NNG_VERSION=1.11.0
PYNNG_VERSION=0.9.0
SDIST_SHA256="fcd839abf82a2934fa8c27ff57b574b41810458e35895bac6288814defa8fb4e"
PREFIX=/usr/local
LIBDIR="$PREFIX/lib/x86_64-linux-gnu"
PC_FILE="$LIBDIR/pkgconfig/infranaut-nng.pc"

if [[ -f "$PC_FILE" ]] && grep -q "^Version: $NNG_VERSION\$" "$PC_FILE" && [[ -f "$LIBDIR/libinfranaut_nng.a" ]]; then
    exit 0
fi

sudo_cmd=""
if [[ $(id -u) -ne 0 ]]; then sudo_cmd="sudo"; fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "building nng $NNG_VERSION (static) into $PREFIX"
# `--no-binary pynng`: the sdist, since a wheel has no nng source. Not `:all:`, which would also
# refuse wheels for the build dependencies pip installs to read the sdist's metadata (cmake among
# them, compiled from source for a quarter of an hour). `--no-deps`: pynng's own are not needed.
python3 -m pip download --no-deps --no-binary pynng "pynng==$PYNNG_VERSION" -d "$work/sdist" >"$work/pip.log" 2>&1 \
    || { cat "$work/pip.log"; exit 1; }
sdist="$work/sdist/pynng-$PYNNG_VERSION.tar.gz"
echo "$SDIST_SHA256  $sdist" | sha256sum -c --quiet -
tar -xzf "$sdist" -C "$work"
src="$work/pynng-$PYNNG_VERSION/nng"
grep -q "NNG_MINOR_VERSION 11" "$src/include/nng/nng.h"

cmake -S "$src" -B "$work/build" -DCMAKE_BUILD_TYPE=Release \
    -DNNG_TESTS=OFF -DNNG_TOOLS=OFF -DNNG_ENABLE_NNGCAT=OFF -DNNG_ENABLE_TLS=OFF \
    -DBUILD_SHARED_LIBS=OFF -DCMAKE_POSITION_INDEPENDENT_CODE=ON \
    -DCMAKE_INSTALL_PREFIX="$PREFIX" -DCMAKE_INSTALL_LIBDIR=lib/x86_64-linux-gnu >"$work/cmake.log" \
    || { cat "$work/cmake.log"; exit 1; }
cmake --build "$work/build" -j "$(nproc)" >"$work/build.log" || { tail -50 "$work/build.log"; exit 1; }
$sudo_cmd cmake --install "$work/build" >/dev/null
$sudo_cmd mv "$LIBDIR/libnng.a" "$LIBDIR/libinfranaut_nng.a"

$sudo_cmd mkdir -p "$(dirname "$PC_FILE")"
$sudo_cmd tee "$PC_FILE" >/dev/null <<EOF
prefix=$PREFIX
libdir=$LIBDIR
includedir=$PREFIX/include

Name: infranaut-nng
Description: nng built statically for Infranaut (scripts/install-nng.sh)
Version: $NNG_VERSION
Libs: -L\${libdir} -linfranaut_nng -lpthread
Cflags: -I\${includedir}
EOF
echo "installed nng $NNG_VERSION"

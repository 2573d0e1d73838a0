#!/usr/bin/env bash
# The C client (clients/c): built with AddressSanitizer, LeakSanitizer and UBSan, then run against
# a real node of this build (scripts/test.sh builds it first): the library test, and
# infranaut-c-push pushing a CSV twice with the same keys (applied once).
set -euo pipefail
cd "$(dirname "$0")/.."
build=.build/c-client
cmake -S clients/c -B "$build" -DINFRANAUT_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build "$build" -j 2 >/dev/null

work="$(mktemp -d)"
node_pid=""
cleanup() {
    if [[ -n "$node_pid" ]]; then kill "$node_pid" 2>/dev/null || true; wait "$node_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT
.build/debug/infranaut start --data-dir "$work/node" --client-listen tcp://127.0.0.1:0 \
    --cluster-listen tcp://127.0.0.1:0 --peer-listen tcp://127.0.0.1:0 --http-listen 127.0.0.1:0 --shards 16 \
    >"$work/node.out" 2>"$work/node.log" &
node_pid=$!
address=""
for _ in $(seq 1 300); do
    address="$(grep -o 'serving on tcp://[0-9.]*:[0-9]*' "$work/node.out" | head -1 | cut -d' ' -f3 || true)"
    [[ -n "$address" ]] && break
    kill -0 "$node_pid" 2>/dev/null || { cat "$work/node.log"; exit 1; }
    sleep 0.1
done
[[ -n "$address" ]] || { echo "error: the node did not report ready" >&2; cat "$work/node.log"; exit 1; }

export ASAN_OPTIONS=detect_leaks=1:halt_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
"$build/client-test" "$address"

cat >"$work/rows.csv" <<'CSV'
request_id,ts,amount,country,note,score
r1,1764518400000,10.5,de,"plain",0.9
r2,1764518400100,,fr,"with, a comma",0.2
r3,1764518400200,12,,"say ""hi""",0.7
r4,1764518400300,13.25,br,,0.4
r5,1764518400400,9,de,last,0.1
CSV
for _ in 1 2; do
    "$build/infranaut-c-push" --node "$address" --model c-push --file "$work/rows.csv" --batch-size 2 \
        --id-column request_id --time-column ts --prediction-column score --key-prefix csv-1
done
rows="$(.build/debug/infranaut status --node "$address" --model c-push --json | python3 -c 'import json,sys; m=json.load(sys.stdin); print(m["rows"])')"
if [[ "$rows" != "5" ]]; then
    echo "error: c-push: the node holds $rows rows, expected 5 (pushed twice with the same keys)" >&2
    exit 1
fi
echo "c client: library test and infranaut-c-push passed under ASan/LSan/UBSan"

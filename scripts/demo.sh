#!/usr/bin/env bash
# Installs what is needed, builds a release binary, starts a local node and pushes synthetic
# telemetry to it, then shows what the node holds and how to look further.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/opt/swift/usr/bin:$PATH"
scripts/setup.sh
swift build -c release --product infranaut
bin="$(swift build -c release --show-bin-path)/infranaut"
demo="${DEMO_DIR:-$PWD/demo-data}"
address="${DEMO_ADDRESS:-tcp://127.0.0.1:7400}"
mkdir -p "$demo"

if [[ -f "$demo/node.pid" ]] && kill -0 "$(cat "$demo/node.pid")" 2>/dev/null; then
    echo "stopping the previous demo node (pid $(cat "$demo/node.pid"))"
    kill "$(cat "$demo/node.pid")"
    sleep 1
fi
"$bin" start --data-dir "$demo/node" --client-listen "$address" >"$demo/node.out" 2>"$demo/node.log" &
echo $! >"$demo/node.pid"
for _ in $(seq 1 50); do
    grep -q "serving on" "$demo/node.out" 2>/dev/null && break
    sleep 0.2
done
grep -q "serving on" "$demo/node.out" || { echo "the node did not start; see $demo/node.log" >&2; exit 1; }
cat "$demo/node.out"

echo
echo "== generating synthetic telemetry (a reference week and a drifted current week)"
"$bin" generate --rows 50000 --features 8 --seed 1 --out "$demo/reference.csv"
"$bin" generate --rows 50000 --features 8 --seed 2 --shift 0.3 --out "$demo/current.csv"

echo
echo "== pushing to $address"
"$bin" push --node "$address" --model fraud-v1 --file "$demo/reference.csv" \
    --id-column id --time-column ts --prediction-column score --label-column label
"$bin" push --node "$address" --model fraud-v2 --file "$demo/current.csv" \
    --id-column id --time-column ts --prediction-column score --label-column label

echo
echo "== what the node holds for fraud-v2"
"$bin" status --node "$address" --model fraud-v2

echo
echo "== offline drift of the current file against the reference"
"$bin" drift --reference "$demo/reference.csv" --current "$demo/current.csv" --columns f0,f1,f2,f3,segment,score

cat <<NEXT

The node keeps running (pid $(cat "$demo/node.pid"), logs in $demo/node.log). Next:
  $bin status --node $address --model fraud-v1 --json
  $bin push --node $address --model my-model --file your-data.csv
  kill -9 $(cat "$demo/node.pid"); $bin start --data-dir $demo/node --client-listen $address   # restart: nothing acknowledged is lost
  kill $(cat "$demo/node.pid")                                        # stop it gracefully
NEXT

#!/usr/bin/env bash
# Installs what is needed, builds a release binary, starts a local 3-node cluster, pushes
# synthetic telemetry to it through different nodes, then shows what the cluster holds and how to
# look further.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/opt/swift/usr/bin:$PATH"
scripts/setup.sh
swift build -c release --product infranaut
bin="$(swift build -c release --show-bin-path)/infranaut"
demo="${DEMO_DIR:-$PWD/demo-data}"
host="${DEMO_HOST:-127.0.0.1}"
mkdir -p "$demo"

# Node i listens for clients on 7400+10i, for gossip on 7401+10i and for peer requests on 7402+10i.
client() { echo "tcp://$host:$((7400 + 10 * $1))"; }
gossip() { echo "tcp://$host:$((7401 + 10 * $1))"; }
peer() { echo "tcp://$host:$((7402 + 10 * $1))"; }
http() { echo "$host:$((7480 + 10 * $1))"; }

for i in 0 1 2; do
    if [[ -f "$demo/node$i.pid" ]] && kill -0 "$(cat "$demo/node$i.pid")" 2>/dev/null; then
        echo "stopping the previous demo node $i (pid $(cat "$demo/node$i.pid"))"
        kill "$(cat "$demo/node$i.pid")"
        sleep 1
    fi
done

for i in 0 1 2; do
    # node0 creates the cluster secret in its data dir; the others join with a copy of it.
    seed=()
    [[ $i -gt 0 ]] && seed=(--seed "$(gossip 0)" --cluster-secret-file "$demo/node0/cluster-secret")
    "$bin" start --node-id "node$i" --data-dir "$demo/node$i" --client-listen "$(client $i)" \
        --cluster-listen "$(gossip $i)" --peer-listen "$(peer $i)" --http-listen "$(http $i)" "${seed[@]}" >"$demo/node$i.out" 2>"$demo/node$i.log" &
    echo $! >"$demo/node$i.pid"
    for _ in $(seq 1 50); do
        grep -q "serving on" "$demo/node$i.out" 2>/dev/null && break
        sleep 0.2
    done
    grep -q "serving on" "$demo/node$i.out" || { echo "node $i did not start; see $demo/node$i.log" >&2; exit 1; }
    cat "$demo/node$i.out"
done

echo
echo "== waiting until every node sees all three alive"
for _ in $(seq 1 100); do
    alive=0
    for i in 0 1 2; do
        n=$("$bin" members --node "$(client $i)" --json 2>/dev/null | grep -c '"status" : "alive"' || true)
        [[ "$n" == 3 ]] && alive=$((alive + 1))
    done
    [[ $alive == 3 ]] && break
    sleep 0.2
done
"$bin" members --node "$(client 0)"

echo
echo "== generating synthetic telemetry (a reference week and a drifted current week)"
"$bin" generate --rows 50000 --features 8 --seed 1 --out "$demo/reference.csv"
"$bin" generate --rows 50000 --features 8 --seed 2 --shift 0.3 --out "$demo/current.csv"

echo
echo "== pushing fraud-v1 through node0 and fraud-v2 through node2 (each is forwarded to its model's shard leader)"
"$bin" push --node "$(client 0)" --model fraud-v1 --file "$demo/reference.csv" \
    --id-column id --time-column ts --prediction-column score --label-column label
"$bin" push --node "$(client 2)" --model fraud-v2 --file "$demo/current.csv" \
    --id-column id --time-column ts --prediction-column score --label-column label

echo
echo "== where fraud-v2 lives, and what the cluster holds for it (asked through node1)"
"$bin" ring --node "$(client 1)" --model fraud-v2 | awk 'NR == 1 { print; shard = $NF } NR == 2 || (NR > 2 && $1 == shard)'
"$bin" status --node "$(client 1)" --model fraud-v2

echo
echo "== declaring fraud-v3's monitoring (10 s windows, segments, a reference), then its traffic"
cat >"$demo/fraud-v3.yaml" <<'SPEC'
apiVersion: infranaut.io/v1
kind: Model
metadata: {name: fraud-v3, labels: {team: payments}}
spec:
  task: binary-classification
  columns: {id: id, timestamp: ts, prediction: score, label: label}
  features:
    - {name: f0, type: numeric}
    - {name: f1, type: numeric}
    - {name: f2, type: numeric}
    - {name: f3, type: numeric}
    - {name: segment, type: categorical}
  segments: [segment]
  window: {size: 10s, lateness: 0}
  reference: {from: upload}
SPEC
"$bin" apply -f "$demo/fraud-v3.yaml" --node "$(client 1)"
"$bin" generate --rows 20000 --features 4 --seed 3 --out "$demo/v3-reference.csv"
"$bin" push --node "$(client 0)" --model fraud-v3 --file "$demo/v3-reference.csv" --reference \
    --id-column id --time-column ts --prediction-column score --label-column label
"$bin" generate --rows 50000 --features 4 --seed 4 --shift 0.3 --out "$demo/v3-current.csv"
"$bin" push --node "$(client 2)" --model fraud-v3 --file "$demo/v3-current.csv" \
    --id-column id --time-column ts --prediction-column score --label-column label
echo
echo "== fraud-v3's closed windows for the whole model: every other feature is shifted by 0.3 sd"
"$bin" windows --node "$(client 1)" --model fraud-v3 --segment none
echo
echo
echo "== offline drift of the current file against the reference"
"$bin" drift --reference "$demo/reference.csv" --current "$demo/current.csv" --columns f0,f1,f2,f3,segment,score

cat <<NEXT

The cluster keeps running (pids $(cat "$demo"/node*.pid | tr '\n' ' '), logs in $demo/node*.log). Next:
  $bin members --node $(client 0)
  $bin status --node $(client 2) --model fraud-v1 --json
  $bin get model fraud-v3 --node $(client 0)                              # the spec, as applied (edit and apply again)
  $bin windows --node $(client 0) --model fraud-v3 --segment segment=alpha --json
  kill -9 $(cat "$demo/node1.pid"); sleep 5; $bin status --node $(client 0) --model fraud-v2   # a node dies: nothing acknowledged is lost
  $bin drill --nodes 5 --kill 1 --rounds 3                               # a failover drill on its own local cluster
  kill $(cat "$demo"/node*.pid | tr '\n' ' ')                            # stop the cluster gracefully
NEXT

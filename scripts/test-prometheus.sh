#!/usr/bin/env bash
# Prometheus against a real node of this build (scripts/test.sh builds it first): the shipped
# scrape configuration and rules pass promtool, and a real Prometheus server scrapes a node and
# answers an Infranaut metric and a recording rule through its query API.
set -euo pipefail
cd "$(dirname "$0")/.."
promtool check rules deploy/prometheus/infranaut-rules.yml >/dev/null
promtool check config deploy/prometheus/prometheus.yml >/dev/null

work="$(mktemp -d)"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT
.build/debug/infranaut start --data-dir "$work/node" --client-listen tcp://127.0.0.1:0 \
    --cluster-listen tcp://127.0.0.1:0 --peer-listen tcp://127.0.0.1:0 --http-listen 127.0.0.1:0 --shards 16 \
    >"$work/node.out" 2>"$work/node.log" &
pids+=($!)
http=""
for _ in $(seq 1 300); do
    http="$(grep -o 'http http://[0-9.]*:[0-9]*' "$work/node.out" | head -1 | cut -d/ -f3 || true)"
    [[ -n "$http" ]] && break
    sleep 0.1
done
[[ -n "$http" ]] || { echo "error: the node did not report its HTTP address" >&2; cat "$work/node.log"; exit 1; }

port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
cp deploy/prometheus/infranaut-rules.yml "$work/"
cat >"$work/prometheus.yml" <<YAML
global: {scrape_interval: 1s, evaluation_interval: 1s}
rule_files: [infranaut-rules.yml]
scrape_configs:
  - job_name: infranaut
    static_configs: [{targets: ["$http"]}]
YAML
prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/tsdb" \
    --web.listen-address="127.0.0.1:$port" >"$work/prometheus.log" 2>&1 &
pids+=($!)

query() {
    curl -sf --get "http://127.0.0.1:$port/api/v1/query" --data-urlencode "query=$1" \
        | python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print(r[0]["value"][1] if r else "")' \
        2>/dev/null || true
}
alive=""; ready=""; recorded=""
for _ in $(seq 1 600); do
    alive="$(query 'infranaut_members{status="alive",job="infranaut"}')"
    ready="$(query 'infranaut_ready')"
    recorded="$(query 'infranaut:ingest_rows:rate5m')"
    [[ "$alive" == "1" && "$ready" == "1" && -n "$recorded" ]] && break
    sleep 0.1
done
if [[ "$alive" != "1" || "$ready" != "1" || -z "$recorded" ]]; then
    echo "error: Prometheus did not answer the node's metrics (alive=$alive ready=$ready recorded=$recorded)" >&2
    tail -20 "$work/prometheus.log" >&2
    exit 1
fi
# The Grafana dashboard: it loads, every query is PromQL this Prometheus accepts, and every
# metric it names is one the node exports or a recording rule makes.
# One client request, so that the request counters exist.
client="$(grep -o 'serving on tcp://[0-9.]*:[0-9]*' "$work/node.out" | head -1 | cut -d' ' -f3)"
.build/debug/infranaut status --node "$client" --model never-sent >/dev/null 2>&1 || true
curl -sf "http://$http/metrics" >"$work/metrics.txt"
python3 - "$work/metrics.txt" "$port" <<'PY'
import json, re, sys, urllib.parse, urllib.request
exported = {line.split()[2] for line in open(sys.argv[1]) if line.startswith("# TYPE ")}
rules = set(re.findall(r"record:\s*(\S+)", open("deploy/prometheus/infranaut-rules.yml").read()))
dashboard = json.load(open("deploy/grafana/infranaut-cluster.json"))
problems, queries = [], 0
for panel in dashboard["panels"]:
    for target in panel.get("targets", []):
        expr = target["expr"]
        queries += 1
        for name in re.findall(r"\b(infranaut[_:][a-z0-9_:]*)", expr):
            base = re.sub(r"_(bucket|sum|count)$", "", name)
            if base not in exported and name not in rules:
                problems.append(f"panel {panel['title']!r}: {name} is neither exported nor recorded")
        url = f"http://127.0.0.1:{sys.argv[2]}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        try:
            answer = json.load(urllib.request.urlopen(url, timeout=10))
        except Exception as error:  # noqa: BLE001 - a 400 is Prometheus refusing the query
            problems.append(f"panel {panel['title']!r}: {expr}: {error}")
            continue
        if answer.get("status") != "success":
            problems.append(f"panel {panel['title']!r}: {expr}: {answer}")
if problems:
    print("\n".join(problems), file=sys.stderr)
    sys.exit(1)
print(f"grafana: {queries} dashboard queries accepted by Prometheus, every metric exported or recorded")
PY
echo "prometheus: scraped $http; infranaut_members{status=\"alive\"} = $alive, infranaut_ready = $ready, recording rule answered"

#!/usr/bin/env bash
# The deployment files: Kubernetes manifests against the API schemas (kubernetes-validate,
# strict), every file a kustomization names exists, the example alert defaults read as a node
# reads them, and the systemd units where systemd-analyze is present.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.build/python-venv
[[ -x "$venv/bin/python" ]] || python3 -m venv "$venv"
"$venv/bin/pip" install -q "kubernetes-validate==1.37.0" pyyaml
"$venv/bin/kubernetes-validate" -k 1.29.0 --strict --quiet \
    deploy/kubernetes/base/service-headless.yaml deploy/kubernetes/base/service-client.yaml \
    deploy/kubernetes/base/statefulset.yaml deploy/kubernetes/base/poddisruptionbudget.yaml
"$venv/bin/python" - <<'PY'
import pathlib, sys, yaml
problems = []
for kustomization in pathlib.Path("deploy/kubernetes").rglob("kustomization.yaml"):
    spec = yaml.safe_load(kustomization.read_text())
    names = list(spec.get("resources", []))
    for generator in spec.get("secretGenerator", []) + spec.get("configMapGenerator", []):
        names += generator.get("files", [])
    for name in names:
        # The cluster secret is made by the operator and never committed.
        if name == "cluster-secret":
            continue
        if not (kustomization.parent / name).exists():
            problems.append(f"{kustomization}: {name} does not exist")
if problems:
    print("\n".join(problems), file=sys.stderr)
    sys.exit(1)
PY
# The example defaults read as a node reads them: a node given a wrong table does not start.
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
if .build/debug/infranaut start --alert-defaults deploy/kubernetes/overlays/example/alert-defaults.yaml \
    --data-dir "$work/node" --client-listen tcp://127.0.0.1:0 --cluster-listen tcp://127.0.0.1:0 \
    --peer-listen tcp://127.0.0.1:0 --http-listen off >"$work/out" 2>"$work/err" &
then
    pid=$!
    for _ in $(seq 1 300); do grep -q "serving on" "$work/out" && break; kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if ! grep -q "serving on" "$work/out"; then
        echo "error: the example alert defaults did not start a node:" >&2; cat "$work/err" >&2; exit 1
    fi
    kill "$pid"; wait "$pid" || true
fi
# The example config file reads as start reads it, with the per-pod variables of the StatefulSet.
INFRANAUT_NODE_ID=infranaut-1 INFRANAUT_CLUSTER_LISTEN=tcp://infranaut-1.infranaut-headless:7401 \
    INFRANAUT_PEER_LISTEN=tcp://infranaut-1.infranaut-headless:7402 \
    .build/debug/infranaut config print --config deploy/kubernetes/overlays/example/infranaut.yaml --json \
    | python3 -c '
import json, sys
rows = {row["key"]: row for row in json.load(sys.stdin)}
assert rows["node-id"]["value"] == "infranaut-1" and rows["node-id"]["source"].startswith("env"), rows["node-id"]
assert rows["http-listen"]["value"] == "0.0.0.0:7480" and rows["http-listen"]["source"].startswith("file"), rows["http-listen"]
assert rows["log-format"]["value"] == "json", rows["log-format"]
'
if command -v systemd-analyze >/dev/null 2>&1; then
    systemd-analyze verify deploy/systemd/infranaut.service deploy/systemd/infranaut@.service 2>&1 \
        | grep -v "not found\|Failed to\|No such file\|is not executable" || true
fi
echo "deploy: manifests, kustomizations and alert defaults check out"

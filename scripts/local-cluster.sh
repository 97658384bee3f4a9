#!/usr/bin/env bash
# Starts a three-node Herald cluster on this machine and stops it cleanly on
# Ctrl-C. APIs on 127.0.0.1:8081-8083, Raft on 127.0.0.1:9081-9083, data in
# ./herald-cluster/n1..n3 (kept between runs: a restart rejoins the same
# cluster). Extra arguments are passed to every node, e.g.
#   scripts/local-cluster.sh --allow-private-networks
# For an API token, export HERALD_API_TOKEN: the nodes and the herald
# client commands both read it.
set -euo pipefail
cd "$(dirname "$0")/.."

bin=$(mktemp -d)/herald
go build -o "$bin" ./cmd/herald
peers=n1=127.0.0.1:9081,n2=127.0.0.1:9082,n3=127.0.0.1:9083
pids=()
for i in 1 2 3; do
  mkdir -p herald-cluster
  "$bin" serve --node-id "n$i" --data-dir "herald-cluster/n$i" \
    --http-addr "127.0.0.1:808$i" --raft-addr "127.0.0.1:908$i" --peers "$peers" "$@" \
    2> >(trap '' INT; sed -u "s/^/n$i | /" >&2) &
  pids+=($!)
done

stop() {
  echo "stopping the cluster..." >&2
  kill -TERM "${pids[@]}" 2>/dev/null || true
  wait "${pids[@]}" 2>/dev/null || true
  rm -rf "$(dirname "$bin")"
}
trap stop INT TERM

for i in 1 2 3; do
  until curl -fs "http://127.0.0.1:808$i/readyz" >/dev/null 2>&1; do
    kill -0 "${pids[$((i-1))]}" 2>/dev/null || { echo "n$i exited" >&2; stop; exit 1; }
    sleep 0.2
  done
done
echo "cluster ready: http://127.0.0.1:8081 http://127.0.0.1:8082 http://127.0.0.1:8083 (Ctrl-C stops it)" >&2
"$bin" cluster status --server http://127.0.0.1:8081 >&2
wait "${pids[@]}"

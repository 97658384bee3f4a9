#!/usr/bin/env bash
# Starts a three-node Herald cluster on this machine and stops it cleanly on
# Ctrl-C. APIs on 127.0.0.1:8081-8083, Raft on 127.0.0.1:9081-9083, data in
# ./herald-cluster/n1..n3 (kept between runs: a restart rejoins the same
# cluster). Extra arguments are passed to every node, e.g.
#   scripts/local-cluster.sh --allow-private-networks
# For an API token, export HERALD_API_TOKEN: the nodes and the herald
# client commands both read it.
#
# Ctrl-C (or SIGTERM or SIGHUP to this script) sends every node one SIGTERM,
# waits for all three and exits 0 if all stopped cleanly, 1 if not. The
# nodes run in process groups of their own, so the terminal's SIGINT reaches
# only this script: a node never gets two signals (a second one makes herald
# exit at once, leaving its state file to be recovered).
#
# Environment:
#   HERALD_BIN                 the herald binary (default: go build ./cmd/herald
#                              into herald-cluster/herald)
#   HERALD_CLUSTER_DIR         where n1..n3 keep their data (default: herald-cluster)
#   HERALD_CLUSTER_HTTP_PORTS  the three API ports (default: "8081 8082 8083")
#   HERALD_CLUSTER_RAFT_PORTS  the three Raft ports (default: "9081 9082 9083")
set -euo pipefail

abspath() { case $1 in /*) printf '%s\n' "$1" ;; *) printf '%s\n' "$PWD/$1" ;; esac; }
bin=${HERALD_BIN:+$(abspath "$HERALD_BIN")}
dir=${HERALD_CLUSTER_DIR:+$(abspath "$HERALD_CLUSTER_DIR")}
cd "$(dirname "$0")/.."
root=$PWD
dir=${dir:-herald-cluster}
IFS=', ' read -r -a http_ports <<<"${HERALD_CLUSTER_HTTP_PORTS:-8081 8082 8083}"
IFS=', ' read -r -a raft_ports <<<"${HERALD_CLUSTER_RAFT_PORTS:-9081 9082 9083}"
if [ "${#http_ports[@]}" -ne 3 ] || [ "${#raft_ports[@]}" -ne 3 ]; then
  echo "HERALD_CLUSTER_HTTP_PORTS and HERALD_CLUSTER_RAFT_PORTS take three ports each" >&2
  exit 2
fi

command -v curl >/dev/null || { echo "this script needs curl" >&2; exit 2; }
mkdir -p "$dir"
if [ -z "$bin" ]; then
  bin=$dir/herald
  go build -o "$bin" ./cmd/herald
fi
peers=n1=127.0.0.1:${raft_ports[0]},n2=127.0.0.1:${raft_ports[1]},n3=127.0.0.1:${raft_ports[2]}

# shquote quotes its argument for a shell, if it needs to be.
shquote() {
  case $1 in
  *[!A-Za-z0-9_./:=,@%+-]* | '') printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")" ;;
  *) printf '%s' "$1" ;;
  esac
}

# node_cmd I sets cmd to node nI's command line.
node_cmd() {
  cmd=("$bin" serve --node-id "n$1" --data-dir "$dir/n$1"
    --http-addr "127.0.0.1:${http_ports[$1 - 1]}" --raft-addr "127.0.0.1:${raft_ports[$1 - 1]}"
    --peers "$peers" ${extra[@]+"${extra[@]}"})
}
extra=("$@")

pids=()      # the nodes started, n1 first
statuses=()  # their exit statuses, once waited for
stopping=0

# stop sends each running node one SIGTERM, the first time only.
# (Messages come after the signals and may fail: the terminal may be gone.)
stop() {
  if [ "$stopping" = 1 ]; then
    echo "already stopping, waiting for the nodes to finish (kill -KILL ${pids[*]-} to not wait)" >&2 || true
    return
  fi
  stopping=1
  local i
  for ((i = 0; i < ${#pids[@]}; i++)); do
    [ -n "${statuses[i]:-}" ] || kill -TERM "${pids[i]}" 2>/dev/null || true
  done
  echo "stopping the cluster..." >&2 || true
}
trap stop INT TERM HUP
if [ "$(trap -p INT)" = "trap -- '' SIGINT" ]; then
  # A shell ignores SIGINT in what it starts in the background, for good.
  echo "SIGINT is ignored here (started in the background?): stop the cluster with kill $$" >&2
fi

# wait_nodes waits for every node started and reports how each stopped.
wait_nodes() {
  local i st clean=0
  for ((i = 0; i < ${#pids[@]}; i++)); do
    while [ -z "${statuses[i]:-}" ]; do
      st=0
      wait "${pids[i]}" || st=$?
      # A signal to this script interrupts wait (status > 128) while the
      # node runs on: wait again.
      if [ "$st" -le 128 ] || ! kill -0 "${pids[i]}" 2>/dev/null; then
        statuses[i]=$st
      fi
    done
    if [ "${statuses[i]}" = 0 ]; then
      echo "n$((i + 1)) stopped cleanly" >&2 || true
    else
      echo "n$((i + 1)) exited with status ${statuses[i]}" >&2 || true
      clean=1
    fi
  done
  return "$clean"
}
trap 'stop; wait_nodes || true' EXIT # whatever ends this script stops the nodes first

# set -m starts each node in its own process group.
set -m
for i in 1 2 3; do
  [ "$stopping" = 0 ] || break
  node_cmd "$i"
  "${cmd[@]}" </dev/null 2> >(trap '' INT; sed -u "s/^/n$i | /" >&2) &
  pids+=($!)
done
set +m

for ((i = 0; i < ${#pids[@]} && stopping == 0; i++)); do
  until [ "$stopping" = 1 ] || curl -fs "http://127.0.0.1:${http_ports[i]}/readyz" >/dev/null 2>&1; do
    if ! kill -0 "${pids[i]}" 2>/dev/null; then
      echo "n$((i + 1)) exited before it was ready" >&2
      stop
      break
    fi
    sleep 0.2 || true
  done
done
if [ "$stopping" = 0 ]; then
  node_cmd 1
  restart="cd $(shquote "$root") &&"
  for arg in "${cmd[@]}"; do restart+=" $(shquote "$arg")"; done
  [ "$stopping" = 1 ] || echo "cluster ready: http://127.0.0.1:${http_ports[0]} http://127.0.0.1:${http_ports[1]} http://127.0.0.1:${http_ports[2]} (Ctrl-C stops it)
nodes: n1 pid ${pids[0]}, n2 pid ${pids[1]}, n3 pid ${pids[2]}; each logs to this terminal's stderr, as \"nN | ...\"
to restart n1 by hand: kill ${pids[0]} (it stops cleanly, the others keep running), then in another terminal:
  $restart
  (its log then goes to that terminal; Ctrl-C here no longer stops it)" >&2
  "$bin" cluster status --server "http://127.0.0.1:${http_ports[0]}" >&2 || true
fi

status=0
wait_nodes || status=1
trap - EXIT
exit "$status"

#!/usr/bin/env bash
# Start the local 3-node Raft cluster (config-node1..3.toml) in the background:
# pid files in pids/, logs in logs/. Waits until a leader is elected, then
# prints /cluster/status. Stop it with scripts/stop-cluster.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
BUN="${BUN:-node_modules/.bin/bun}"
[ -x "$BUN" ] || BUN="$(command -v bun)"
mkdir -p pids logs data
"$BUN" run src/main.ts keygen ./data/cluster.key >/dev/null
for n in 1 2 3; do
  if [ -f "pids/node$n.pid" ] && kill -0 "$(cat "pids/node$n.pid")" 2>/dev/null; then
    echo "node $n already running (pid $(cat "pids/node$n.pid"))"
    continue
  fi
  nohup "$BUN" run src/main.ts --config "config-node$n.toml" >"logs/node$n.log" 2>&1 &
  echo $! >"pids/node$n.pid"
  echo "node $n started (pid $!, log logs/node$n.log)"
done
deadline=$((SECONDS + 30))
until curl -fsS http://127.0.0.1:8001/cluster/leader >/dev/null 2>&1 \
   || curl -fsS http://127.0.0.1:8002/cluster/leader >/dev/null 2>&1 \
   || curl -fsS http://127.0.0.1:8003/cluster/leader >/dev/null 2>&1; do
  if [ "$SECONDS" -ge "$deadline" ]; then
    echo "no leader within 30 s; see logs/" >&2
    exit 1
  fi
  sleep 0.2
done
for n in 1 2 3; do
  curl -fsS "http://127.0.0.1:800$n/cluster/status" && echo || echo "node $n: no answer"
done

#!/usr/bin/env bash
# Stop the nodes started by scripts/start-cluster.sh (SIGTERM, then SIGKILL after 10 s).
set -uo pipefail
cd "$(dirname "$0")/.."
for n in 1 2 3; do
  file="pids/node$n.pid"
  [ -f "$file" ] || continue
  pid="$(cat "$file")"
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    deadline=$((SECONDS + 10))
    while kill -0 "$pid" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
    echo "node $n stopped (pid $pid)"
  fi
  rm -f "$file"
done

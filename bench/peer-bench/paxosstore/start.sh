#!/usr/bin/env bash
# peer-bench store: nats-server + 3 PaxosStore nodes (this repository's dist/, LevelDB, fsync on).
# Contract (peer-bench README): append every started PID to $PIDFILE, exit 0 once ready.
set -euo pipefail
source "$BASE/config.sh"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../../.." && pwd)"
D="$RUN_DIR/paxosstore"; rm -rf "$D"; mkdir -p "$D"
PORT=14260
[[ -f $REPO/dist/cli/main.js ]] || { echo "paxosstore: run npm run build in $REPO first" >&2; exit 1; }
nats-server -a 127.0.0.1 -p $PORT -l "$D/nats.log" >/dev/null 2>&1 &
echo $! >>"$PIDFILE"
for _ in $(seq 1 100); do (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.1; done
for n in n1 n2 n3; do
  node "$REPO/bin/paxosstore.mjs" node --node-id $n --cluster bench --members n1,n2,n3 \
    --nats nats://127.0.0.1:$PORT --data-dir "$D/$n" --log-level info >"$D/$n.log" 2>&1 &
  echo $! >>"$PIDFILE"
done
for _ in $(seq 1 300); do
  ok=0; for n in n1 n2 n3; do grep -q "paxosstore node $n ready" "$D/$n.log" 2>/dev/null && ok=$((ok+1)); done
  [[ $ok -eq 3 ]] && { echo "paxosstore: ready"; exit 0; }
  sleep 0.1
done
echo "paxosstore: nodes did not become ready" >&2; tail -5 "$D"/n*.log >&2; exit 1

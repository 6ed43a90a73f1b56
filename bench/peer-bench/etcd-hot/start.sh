#!/usr/bin/env bash
# peer-bench store: peer-bench's own 3-member etcd cluster, driven by the hot-key workload of
# issue 11 (adapter.mjs) so PaxosStore's hot-key phases have an etcd row in the same run.
set -euo pipefail
exec bash "$BASE/stores/etcd/start.sh"

#!/usr/bin/env bash
# Where the machine's CPU time goes during one bench phase: every process, every thread, the
# kernel included (perf, system-wide, cpu-clock samples). `--cpu-prof` (bench/README.md) shows a
# node's JavaScript by wall time; this shows what the CPUs actually ran: the nodes' main
# threads, their GC and LevelDB threads, nats-server, the kernel's socket and fsync work.
#
#   bash bench/cpuTime.sh [PHASE] [SECONDS]      default: put-64, 10 s of samples
#
# Needs perf (Debian: apt-get install linux-perf) and root (or kernel.perf_event_paranoid <= 0).
# Starts `npm run bench` (nats-server + 3 nodes from dist/, run `npm run build` first) with the
# nodes under --perf-basic-prof, so JavaScript frames have names. Output: bench/results/cpu-time-
# <phase>-<date>.txt unless OUT is set.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PHASE=${1:-put-64}
SECONDS_SAMPLED=${2:-10}
command -v perf >/dev/null || { echo "cpuTime: perf is not installed (apt-get install linux-perf)" >&2; exit 1; }
[[ -f dist/cli/main.js ]] || { echo "cpuTime: run npm run build first" >&2; exit 1; }
case "$SECONDS_SAMPLED" in ''|*[!0-9]*) echo "cpuTime: SECONDS must be a whole number" >&2; exit 2;; esac
OUT=${OUT:-bench/results/cpu-time-$PHASE-$(date -u +%Y%m%dT%H%M%SZ).txt}
WORK=$(mktemp -d /tmp/paxosstore-cputime-XXXXXX)
BENCH_PID=""
cleanup() { [[ -n $BENCH_PID ]] && kill "$BENCH_PID" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT

# The phase runs long enough for the samples to fall inside its measured window.
DURATION=$((SECONDS_SAMPLED + 6))
echo "cpuTime: npm run bench -- --phases $PHASE --duration $DURATION (nodes with --perf-basic-prof)"
npx tsx bench/bench.ts --phases "$PHASE" --duration "$DURATION" --node-flags "--perf-basic-prof" >"$WORK/bench.txt" 2>&1 &
BENCH_PID=$!
# Wait for the measured window (the bench prints "<phase>: 2/<d> s" once it is in it).
for _ in $(seq 1 600); do
  grep -q "$PHASE: 2/" "$WORK/bench.txt" 2>/dev/null && break
  kill -0 "$BENCH_PID" 2>/dev/null || { cat "$WORK/bench.txt" >&2; exit 1; }
  sleep 0.5
done
echo "cpuTime: sampling every CPU for $SECONDS_SAMPLED s"
perf record -F 499 -e cpu-clock -a -g -o "$WORK/perf.data" -- sleep "$SECONDS_SAMPLED" 2>"$WORK/perf-record.txt"
wait "$BENCH_PID" || true
BENCH_PID=""
# head closes the pipe early: that is not a failure of the report.
report() { perf report -i "$WORK/perf.data" --stdio "$@" 2>/dev/null | grep -v '^#' | grep -v '^$' || true; }
set +o pipefail
{
  echo "# bash bench/cpuTime.sh $PHASE $SECONDS_SAMPLED — $(date -u +%Y-%m-%dT%H:%MZ), commit $(git rev-parse --short HEAD), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "# the bench's own line for the phase (ops/s, latency, CPU of nodes and nats-server):"
  grep -E "^$PHASE +" "$WORK/bench.txt" || true
  echo
  echo "## share of all samples (both CPUs, idle = swapper) by process name ('node' = the 3 nodes and the bench client)"
  report --no-children --sort comm -g none | head -12
  echo
  echo "## by binary: node = V8 (GC, builtins, interpreter), [JIT] = optimised JavaScript, [kernel] = syscalls, wakeups, TCP, fsync"
  report --no-children --comm node --sort dso -g none | head -14
  echo
  echo "## the same samples by kind of work (share of all samples; 'node' processes unless named)"
  report --no-children --sort comm,dso,sym -g none | node "$(dirname "${BASH_SOURCE[0]}")/cpuTimeKinds.mjs"
  echo
  echo "## processes named node: inclusive share by symbol (children included), top 70"
  report --children --comm node --sort sym -g none | head -70
  echo
  echo "## processes named node: self share by symbol, top 50"
  report --no-children --comm node --sort dso,sym -g none | head -50
} >"$OUT"
# KEEP=1 keeps the samples beside the report, for perf report -i of your own.
if [[ ${KEEP:-0} == 1 ]]; then mv "$WORK/perf.data" "$OUT.perf.data"; echo "cpuTime: samples in $OUT.perf.data"; fi
echo "cpuTime: wrote $OUT"

#!/usr/bin/env bash
# Start, stop or inspect a Docker daemon for the container tests (testcontainers).
#
# Usage: bash infra/dockerd.sh start|stop|status|cleanup
#   start    if `docker info` does not answer, start dockerd in the background (own session,
#            log and pid file in $DOCKERD_STATE_DIR) and wait until `docker info` answers
#            (at most $DOCKERD_TIMEOUT seconds, default 30). If a daemon already answers,
#            leave it alone and remember that we did not start it.
#   stop     remove containers and networks labelled org.testcontainers=true, then stop the
#            dockerd that THIS script started (SIGTERM, SIGKILL after 20 s). A daemon this
#            script did not start is never stopped, nor are its containers touched.
#   cleanup  remove containers and networks labelled org.testcontainers=true on whatever
#            daemon answers (CI uses it: no ryuk there to reap them).
#   status   say whether a daemon answers and whether this script started it; exit 0 if it
#            answers, 1 if not.
#
# Environment: DOCKERD_STATE_DIR (default /tmp/paxosstore-dockerd), DOCKERD_TIMEOUT (30).
# Needs root to start dockerd. Install the engine first: bash infra/install-docker.sh
set -euo pipefail

STATE_DIR=${DOCKERD_STATE_DIR:-/tmp/paxosstore-dockerd}
PID_FILE=$STATE_DIR/dockerd.pid
LOG_FILE=$STATE_DIR/dockerd.log
TIMEOUT=${DOCKERD_TIMEOUT:-30}
LABEL=org.testcontainers=true

log() { echo "dockerd.sh: $*"; }
die() { echo "dockerd.sh: $*" >&2; exit 1; }

find_bin() {
  command -v "$1" 2>/dev/null && return 0
  for d in /usr/sbin /usr/bin /usr/local/sbin /usr/local/bin; do
    if [ -x "$d/$1" ]; then echo "$d/$1"; return 0; fi
  done
  return 1
}

answers() {
  # `docker info` with a bound: a wedged daemon must not hang the caller.
  timeout 10 docker info --format '{{.ServerVersion}}' >/dev/null 2>&1
}

# The pid in our pid file, if that process is alive and is a dockerd.
our_pid() {
  [ -f "$PID_FILE" ] || return 1
  local pid
  pid=$(cat "$PID_FILE" 2>/dev/null || true)
  [ -n "$pid" ] || return 1
  [ "$(cat "/proc/$pid/comm" 2>/dev/null || true)" = dockerd ] || return 1
  echo "$pid"
}

cleanup_labelled() {
  answers || { log "no daemon answers: nothing to clean up"; return 0; }
  local ids nets
  ids=$(docker ps -aq --filter "label=$LABEL" 2>/dev/null || true)
  if [ -n "$ids" ]; then
    log "removing $(echo "$ids" | wc -l) container(s) labelled $LABEL"
    # shellcheck disable=SC2086
    docker rm -f -v $ids >/dev/null 2>&1 || true
  fi
  nets=$(docker network ls -q --filter "label=$LABEL" 2>/dev/null || true)
  if [ -n "$nets" ]; then
    log "removing $(echo "$nets" | wc -l) network(s) labelled $LABEL"
    # shellcheck disable=SC2086
    docker network rm $nets >/dev/null 2>&1 || true
  fi
}

start() {
  command -v docker >/dev/null 2>&1 || die "no docker CLI on PATH: run infra/install-docker.sh"
  if pid=$(our_pid); then
    log "dockerd started earlier by this script (pid $pid); waiting for it to answer"
  elif answers; then
    log "a Docker daemon already answers (not started by this script): using it"
    rm -f "$PID_FILE"
    return 0
  else
    local bin
    bin=$(find_bin dockerd) || die "dockerd is not installed: run infra/install-docker.sh"
    [ "$(id -u)" -eq 0 ] || die "starting dockerd needs root (or start Docker yourself)"
    mkdir -p "$STATE_DIR"
    log "starting $bin (log: $LOG_FILE)"
    # setsid: its own session, so a Ctrl-C or a process-group kill aimed at the tests does
    # not take the daemon down with it; `stop` ends it.
    setsid "$bin" >>"$LOG_FILE" 2>&1 </dev/null &
    pid=$!
    echo "$pid" >"$PID_FILE"
  fi
  local t0 deadline
  t0=$(date +%s%N)
  deadline=$(( $(date +%s) + TIMEOUT ))
  until answers; do
    if ! kill -0 "$pid" 2>/dev/null; then
      rm -f "$PID_FILE"
      echo "dockerd.sh: dockerd (pid $pid) exited before it answered; last log lines:" >&2
      tail -n 30 "$LOG_FILE" >&2 || true
      exit 1
    fi
    if [ "$(date +%s)" -ge "$deadline" ]; then
      echo "dockerd.sh: dockerd (pid $pid) did not answer within ${TIMEOUT}s; last log lines:" >&2
      tail -n 30 "$LOG_FILE" >&2 || true
      exit 1
    fi
    sleep 0.2
  done
  log "dockerd (pid $pid) ready in $(( ($(date +%s%N) - t0) / 1000000 )) ms: server $(docker info --format '{{.ServerVersion}}' 2>/dev/null)"
}

stop() {
  local pid
  if ! pid=$(our_pid); then
    rm -f "$PID_FILE"
    log "no dockerd started by this script is running: nothing to stop"
    return 0
  fi
  cleanup_labelled
  log "stopping dockerd (pid $pid)"
  # dockerd-managed containerd, to reap if dockerd has to be killed hard.
  local cpid=""
  cpid=$(cat /var/run/docker/containerd/containerd.pid 2>/dev/null || true)
  kill -TERM "$pid" 2>/dev/null || true
  local i
  for i in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.2
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "dockerd did not stop in 20 s: SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    if [ -n "$cpid" ] && [ "$(cat "/proc/$cpid/comm" 2>/dev/null || true)" = containerd ]; then
      kill -TERM "$cpid" 2>/dev/null || true
    fi
  fi
  rm -f "$PID_FILE"
  log "dockerd stopped"
}

status() {
  local pid=""
  pid=$(our_pid || true)
  if answers; then
    if [ -n "$pid" ]; then
      log "running, started by this script (pid $pid), server $(docker info --format '{{.ServerVersion}}' 2>/dev/null)"
    else
      log "running, not started by this script, server $(docker info --format '{{.ServerVersion}}' 2>/dev/null)"
    fi
    return 0
  fi
  if [ -n "$pid" ]; then
    log "dockerd started by this script (pid $pid) is alive but does not answer yet"
  else
    log "no Docker daemon answers"
  fi
  return 1
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  cleanup) cleanup_labelled ;;
  *) echo "usage: $0 start|stop|status|cleanup" >&2; exit 2 ;;
esac

#!/usr/bin/env bash
# Install a Docker engine (dockerd + docker CLI) for the testcontainers suites.
#
# Usage: bash infra/install-docker.sh      (then: bash infra/dockerd.sh start)
#
# Idempotent: does nothing when both `dockerd` and `docker` are present. Note that some
# machine images ship a docker CLI alone (e.g. /usr/local/bin/docker): that is only the
# client, so the check is for `dockerd`. On Debian/Ubuntu, as root, installs Debian's
# `docker.io` package (20.10 on bookworm; API 1.41 is enough for testcontainers 11).
# The package's service is NOT started (no systemd here; a temporary policy-rc.d keeps
# invoke-rc.d from starting it): infra/dockerd.sh starts and stops the daemon.
set -euo pipefail

have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/usr/bin/$1" ]; }

if have dockerd && have docker; then
  echo "install-docker: already installed: dockerd ($( (command -v dockerd || echo /usr/sbin/dockerd) ))," \
       "docker CLI $( (docker --version 2>/dev/null || true) | head -n1)"
  exit 0
fi

how_to() {
  cat >&2 <<'MSG'
install-docker: cannot install a Docker engine automatically on this machine.
  Install one yourself (Debian/Ubuntu: apt-get install docker.io; elsewhere Docker Engine or
  Docker Desktop), make sure `docker info` answers, then re-run the tests.
  Container tests are skipped without Docker unless REQUIRE_DOCKER=1.
MSG
}

if ! command -v apt-get >/dev/null 2>&1 || [ ! -r /etc/os-release ]; then
  echo "install-docker: this is not a Debian/Ubuntu system (no apt-get)." >&2
  how_to
  exit 1
fi
# shellcheck disable=SC1091
. /etc/os-release
case " ${ID:-} ${ID_LIKE:-} " in
  *" debian "*|*" ubuntu "*) ;;
  *) echo "install-docker: unsupported distribution '${ID:-unknown}'." >&2; how_to; exit 1 ;;
esac
if [ "$(id -u)" -ne 0 ]; then
  echo "install-docker: must run as root to use apt-get (try: sudo bash $0)." >&2
  how_to
  exit 1
fi

# Keep the package's init script from starting a daemon we do not track. Only if the
# machine has no policy-rc.d of its own; ours is removed again on exit.
policy=/usr/sbin/policy-rc.d
made_policy=0
cleanup() { if [ "$made_policy" = 1 ]; then rm -f "$policy"; fi; }
trap cleanup EXIT
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\n# temporary, from paxosstore infra/install-docker.sh\nexit 101\n' >"$policy"
  chmod 755 "$policy"
  made_policy=1
fi

export DEBIAN_FRONTEND=noninteractive
start=$(date +%s)
# apt-get update takes ~10 s here; the two install scripts share one within 30 minutes
# (stamp file). If the install then fails on stale lists, update and try once more.
stamp=/tmp/paxosstore-apt-updated
apt_update() {
  echo "install-docker: apt-get update"
  apt-get -o DPkg::Lock::Timeout=600 update -q
  touch "$stamp"
}
apt_install() {
  echo "install-docker: apt-get install docker.io"
  apt-get install -y -q --no-install-recommends -o DPkg::Lock::Timeout=600 docker.io
}
if [ -n "$(find "$stamp" -mmin -30 2>/dev/null)" ]; then
  echo "install-docker: apt lists updated less than 30 min ago: skipping apt-get update"
  apt_install || { apt_update; apt_install; }
else
  apt_update
  apt_install
fi

if ! have dockerd; then
  echo "install-docker: apt-get finished but dockerd is not installed" >&2
  exit 1
fi
echo "install-docker: installed docker.io in $(( $(date +%s) - start ))s"

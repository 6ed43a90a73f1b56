#!/usr/bin/env bash
# Install nats-server (the broker every PaxosStore node and test talks through).
#
# Usage: bash infra/install-nats-server.sh
#
# Idempotent: does nothing when nats-server is already on PATH or at /usr/sbin/nats-server.
# On Debian/Ubuntu, as root, installs Debian's `nats-server` package (2.9.x on bookworm);
# the binary lands at /usr/sbin/nats-server. Elsewhere it says how to get it and exits 1.
# No service is started: tests and `paxosstore dev` spawn their own servers on free ports.
set -euo pipefail

if command -v nats-server >/dev/null 2>&1; then
  echo "install-nats-server: already installed: $(command -v nats-server) ($(nats-server --version 2>&1 | head -n1))"
  exit 0
fi
if [ -x /usr/sbin/nats-server ]; then
  echo "install-nats-server: already installed: /usr/sbin/nats-server ($(/usr/sbin/nats-server --version 2>&1 | head -n1))"
  echo "install-nats-server: note: /usr/sbin is not on PATH here; the test helpers look there too"
  exit 0
fi

how_to() {
  cat >&2 <<'MSG'
install-nats-server: cannot install nats-server automatically on this machine.
  Install it yourself, then re-run:
    - Debian/Ubuntu (as root):  apt-get update && apt-get install -y nats-server
    - macOS (Homebrew):         brew install nats-server
    - anywhere with Go:         go install github.com/nats-io/nats-server/v2@latest
    - or a release binary from the nats-server project, put on PATH
  Alternatively point the tests at a binary with NATS_SERVER_BIN=/path/to/nats-server.
MSG
}

if ! command -v apt-get >/dev/null 2>&1 || [ ! -r /etc/os-release ]; then
  echo "install-nats-server: this is not a Debian/Ubuntu system (no apt-get)." >&2
  how_to
  exit 1
fi
# shellcheck disable=SC1091
. /etc/os-release
case " ${ID:-} ${ID_LIKE:-} " in
  *" debian "*|*" ubuntu "*) ;;
  *) echo "install-nats-server: unsupported distribution '${ID:-unknown}'." >&2; how_to; exit 1 ;;
esac
if [ "$(id -u)" -ne 0 ]; then
  echo "install-nats-server: must run as root to use apt-get (try: sudo bash $0)." >&2
  how_to
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
start=$(date +%s)
# apt-get update takes ~10 s here; the two install scripts share one within 30 minutes
# (stamp file). If the install then fails on stale lists, update and try once more.
stamp=/tmp/paxosstore-apt-updated
apt_update() {
  echo "install-nats-server: apt-get update"
  apt-get -o DPkg::Lock::Timeout=600 update -q
  touch "$stamp"
}
apt_install() {
  echo "install-nats-server: apt-get install nats-server"
  apt-get install -y -q --no-install-recommends -o DPkg::Lock::Timeout=600 nats-server
}
if [ -n "$(find "$stamp" -mmin -30 2>/dev/null)" ]; then
  echo "install-nats-server: apt lists updated less than 30 min ago: skipping apt-get update"
  apt_install || { apt_update; apt_install; }
else
  apt_update
  apt_install
fi

if ! command -v nats-server >/dev/null 2>&1 && [ ! -x /usr/sbin/nats-server ]; then
  echo "install-nats-server: apt-get finished but nats-server is not installed" >&2
  exit 1
fi
bin=$(command -v nats-server || echo /usr/sbin/nats-server)
echo "install-nats-server: installed $bin ($("$bin" --version 2>&1 | head -n1)) in $(( $(date +%s) - start ))s"

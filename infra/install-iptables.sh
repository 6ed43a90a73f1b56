#!/usr/bin/env bash
# Install iptables and iproute2: `npm run verify` cuts real network links between the
# network namespaces of its nodes with iptables DROP rules (test/linearizability/netns.ts).
#
# Usage: bash infra/install-iptables.sh
#
# Idempotent: does nothing when both `iptables` and `ip` are installed. On Debian/Ubuntu, as
# root, installs the Debian packages; elsewhere it says how to get them and exits 1.
set -euo pipefail
export PATH="$PATH:/usr/sbin:/sbin"

if command -v iptables >/dev/null 2>&1 && command -v ip >/dev/null 2>&1; then
  echo "install-iptables: already installed: $(command -v iptables) ($(iptables --version 2>&1 | head -n1)), $(command -v ip)"
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-iptables: no apt-get here: install iptables and iproute2 yourself (as root), then re-run" >&2
  exit 1
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "install-iptables: must run as root to use apt-get (try: sudo bash $0)" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
start=$(date +%s)
# Shares the apt-get update stamp of install-nats-server.sh: one update per 30 minutes.
stamp=/tmp/paxosstore-apt-updated
apt_update() {
  echo "install-iptables: apt-get update"
  apt-get -o DPkg::Lock::Timeout=600 update -q
  touch "$stamp"
}
apt_install() {
  echo "install-iptables: apt-get install iptables iproute2"
  apt-get install -y -q --no-install-recommends -o DPkg::Lock::Timeout=600 iptables iproute2
}
if [ -n "$(find "$stamp" -mmin -30 2>/dev/null)" ]; then
  apt_install || { apt_update; apt_install; }
else
  apt_update
  apt_install
fi
command -v iptables >/dev/null 2>&1 || { echo "install-iptables: apt-get finished but iptables is not installed" >&2; exit 1; }
echo "install-iptables: installed $(command -v iptables) ($(iptables --version 2>&1 | head -n1)) in $(( $(date +%s) - start ))s"

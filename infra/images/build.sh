#!/usr/bin/env bash
# Build the project's container images from the host's own files: no registry is reachable
# on these machines, so nothing is pulled (see shared/ENVIRONMENT.md, "Container images
# without a registry").
#
# Usage: bash infra/images/build.sh            (needs a running Docker: infra/dockerd.sh start)
#
# Images (re-running rebuilds; Docker's layer cache makes an unchanged rebuild quick):
#   paxosstore/nats-server:local  FROM scratch: the host's nats-server + the libraries ldd lists,
#                                 infra/nats/*.conf in /etc/nats. Default command:
#                                 -c /etc/nats/plain.conf -a 0.0.0.0 (args replace it, e.g. --version)
#   paxosstore/node-base:local    FROM scratch: the host's /usr/bin/node + its ldd libraries, /tmp
#                                 (1777), minimal /etc/passwd, /etc/group, /etc/nsswitch.conf
#                                 (hosts: files dns, so containers resolve each other by name)
#   paxosstore/node:local         FROM node-base: dist/, bin/, package.json and production
#                                 node_modules in /app, plus any library its native addons need.
#                                 ENTRYPOINT node /app/bin/paxosstore.mjs node. Label
#                                 org.paxosstore.source: infra/images/fingerprint.mjs of the tree
# If the project cannot be built (npm run build fails), only the two base images are built,
# a warning says so, and the script still exits 0 (set IMAGES_REQUIRE_APP=1 to fail instead).
#
# Environment: NATS_SERVER_BIN, NODE_BIN (default: the host's), IMAGES_REQUIRE_APP.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
ROOT=$(pwd)
log() { echo "images: $*"; }
die() { echo "images: $*" >&2; exit 1; }
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

# No buildx plugin here: use the classic builder, which also takes FROM of a local-only image
# without trying a registry.
export DOCKER_BUILDKIT=0

command -v docker >/dev/null 2>&1 || die "no docker CLI: run infra/install-docker.sh"
timeout 10 docker info >/dev/null 2>&1 || die "Docker does not answer: run 'bash infra/dockerd.sh start' first"

NATS_BIN=${NATS_SERVER_BIN:-$(command -v nats-server || echo /usr/sbin/nats-server)}
[ -x "$NATS_BIN" ] || die "nats-server not found ($NATS_BIN): run infra/install-nats-server.sh"
NODE_BIN=${NODE_BIN:-/usr/bin/node}
[ -x "$NODE_BIN" ] || NODE_BIN=$(command -v node) || die "node not found"

WORK=$(mktemp -d /tmp/paxosstore-images-XXXXXX)
trap 'rm -rf "$WORK"' EXIT

# Copy FILE into ROOTFS at the same path (following symlinks), unless already there.
put() {
  local rootfs=$1 src=$2 dst=${3:-$2}
  [ -e "$rootfs$dst" ] && return 0
  mkdir -p "$rootfs$(dirname "$dst")"
  cp -L "$src" "$rootfs$dst"
}

# Copy the shared libraries (and the dynamic loader) that `ldd FILE` lists into ROOTFS.
put_libs() {
  local rootfs=$1 file=$2 lib out
  # ldd exits non-zero for a static binary ("not a dynamic executable"): nothing to copy.
  out=$(ldd "$file" 2>/dev/null) || return 0
  if echo "$out" | grep -q "not found"; then
    die "$file needs libraries this machine lacks: $(echo "$out" | grep 'not found' | tr -s ' \t' ' ')"
  fi
  for lib in $(echo "$out" | grep -o '/[^ ]*' ); do
    put "$rootfs" "$lib"
  done
}

# Minimal account and resolver files for a FROM-scratch image.
put_etc() {
  local rootfs=$1
  mkdir -p "$rootfs/etc" "$rootfs/tmp" "$rootfs/root"
  chmod 1777 "$rootfs/tmp"
  chmod 700 "$rootfs/root"
  cat >"$rootfs/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/sbin/nologin
node:x:1000:1000:node:/home/node:/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin
EOF
  cat >"$rootfs/etc/group" <<'EOF'
root:x:0:
node:x:1000:
nogroup:x:65534:
EOF
  printf 'passwd: files\ngroup: files\nhosts: files dns\n' >"$rootfs/etc/nsswitch.conf"
  mkdir -p "$rootfs/home/node"
  chown 1000:1000 "$rootfs/home/node"
}

build() { # TAG CONTEXT [docker build args...]
  local tag=$1 ctx=$2 t0
  shift 2
  t0=$(now_ms)
  # The classic builder's step log goes to $WORK for a failure report.
  if ! docker build --label org.paxosstore.image=true "$@" -t "$tag" "$ctx" >"$WORK/build.log" 2>&1; then
    cat "$WORK/build.log" >&2
    die "docker build of $tag failed"
  fi
  log "built $tag in $(( $(now_ms) - t0 )) ms ($(docker image inspect -f '{{.Size}}' "$tag" | awk '{printf "%.0f MB", $1/1e6}'))"
}

T_ALL=$(now_ms)

# ---------------------------------------------------------------------------- nats-server
ctx=$WORK/nats
mkdir -p "$ctx/root/usr/sbin" "$ctx/root/etc/nats"
put "$ctx/root" "$NATS_BIN" /usr/sbin/nats-server
put_libs "$ctx/root" "$NATS_BIN"
put_etc "$ctx/root"
cp infra/nats/*.conf "$ctx/root/etc/nats/"
cat >"$ctx/Dockerfile" <<'EOF'
FROM scratch
COPY root/ /
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
EXPOSE 4222
ENTRYPOINT ["/usr/sbin/nats-server"]
CMD ["-c", "/etc/nats/plain.conf", "-a", "0.0.0.0"]
EOF
build paxosstore/nats-server:local "$ctx"

# ---------------------------------------------------------------------------- node-base
ctx=$WORK/node-base
mkdir -p "$ctx/root"
put "$ctx/root" "$NODE_BIN" /usr/bin/node
put_libs "$ctx/root" "$NODE_BIN"
put_etc "$ctx/root"
cat >"$ctx/Dockerfile" <<'EOF'
FROM scratch
COPY root/ /
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root
CMD ["/usr/bin/node"]
EOF
build paxosstore/node-base:local "$ctx"

# ---------------------------------------------------------------------------- checks
v=$(docker run --rm paxosstore/nats-server:local --version 2>&1) || die "nats-server image does not run: $v"
log "check: paxosstore/nats-server:local --version -> $v"
v=$(docker run --rm paxosstore/node-base:local node -e 'console.log(1)' 2>&1) || die "node-base image does not run: $v"
[ "$v" = 1 ] || die "node-base image printed '$v', expected 1"
log "check: paxosstore/node-base:local node -e 'console.log(1)' -> $v"

# ---------------------------------------------------------------------------- node (the project)
app_fail() {
  if [ "${IMAGES_REQUIRE_APP:-0}" = 1 ]; then die "$1"; fi
  echo "images: WARNING: $1" >&2
  echo "images: WARNING: built only paxosstore/nats-server:local and paxosstore/node-base:local" >&2
  log "done in $(( $(now_ms) - T_ALL )) ms"
  exit 0
}

# What the node image is built from (sources, package files, configs, this script): a label on
# the image, so that the container tests can tell a stale image (test/containers/docker.ts).
SOURCE_FP=$(node infra/images/fingerprint.mjs "$ROOT") || die "infra/images/fingerprint.mjs failed"

# Build dist/ when it is missing or older than any source file.
if [ ! -f dist/cli/main.js ] || [ -n "$(find src -newer dist/cli/main.js -type f -print -quit 2>/dev/null)" ]; then
  log "dist/ missing or stale: npm run build"
  t0=$(now_ms)
  if ! npm run build >"$WORK/npm-build.log" 2>&1; then
    tail -n 40 "$WORK/npm-build.log" >&2
    app_fail "npm run build failed: cannot build paxosstore/node:local"
  fi
  log "npm run build in $(( $(now_ms) - t0 )) ms"
fi
[ -f dist/cli/main.js ] || app_fail "dist/cli/main.js missing after npm run build"
[ -f bin/paxosstore.mjs ] || app_fail "bin/paxosstore.mjs missing"

ctx=$WORK/node
app=$ctx/root/app
mkdir -p "$app"
cp -a dist bin package.json "$app/"
[ -f package-lock.json ] && cp package-lock.json "$app/"
# Production dependencies only, from npm's cache where possible. Install scripts are not
# run (npm here runs no unapproved ones anyway); classic-level and msgpackr load the
# prebuilt binaries they ship.
t0=$(now_ms)
if [ -f package-lock.json ]; then npm_cmd=(npm ci); else npm_cmd=(npm install); fi
if ! (cd "$app" && "${npm_cmd[@]}" --omit=dev --ignore-scripts --prefer-offline --no-audit --no-fund \
      >"$WORK/npm-prod.log" 2>&1); then
  tail -n 40 "$WORK/npm-prod.log" >&2
  app_fail "installing production node_modules failed"
fi
rm -f "$app/package-lock.json"
log "production node_modules in $(( $(now_ms) - t0 )) ms ($(du -sh "$app/node_modules" | cut -f1))"
# Libraries that native addons need beyond node's own (glibc builds for this platform only).
while IFS= read -r addon; do
  case "$addon" in *musl*|*android*|*darwin*|*win32*|*arm*) continue ;; esac
  put_libs "$ctx/root" "$addon"
done < <(find "$app/node_modules" -name '*.node' -type f)
# Only what node-base lacks (the same files would be identical layers anyway).
cat >"$ctx/Dockerfile" <<'EOF'
FROM paxosstore/node-base:local
COPY root/ /
WORKDIR /app
ENV NODE_ENV=production
ENTRYPOINT ["/usr/bin/node", "/app/bin/paxosstore.mjs", "node"]
EOF
build paxosstore/node:local "$ctx" --label "org.paxosstore.source=$SOURCE_FP"

# Check: the CLI loads, and LevelDB's native addon works (a synced put/get in /tmp).
v=$(docker run --rm --entrypoint /usr/bin/node paxosstore/node:local /app/bin/paxosstore.mjs --version 2>&1) \
  || die "paxosstore/node:local: the CLI does not start: $v"
log "check: paxosstore/node:local paxosstore --version -> $v"
v=$(docker run --rm --entrypoint /usr/bin/node -w /app paxosstore/node:local -e '
  const { ClassicLevel } = require("classic-level");
  const db = new ClassicLevel("/tmp/check");
  db.put("k", "v", { sync: true }).then(() => db.get("k")).then((x) => { console.log("leveldb:" + x); return db.close(); });
' 2>&1) || die "paxosstore/node:local: LevelDB does not load: $v"
[ "$v" = "leveldb:v" ] || die "paxosstore/node:local: LevelDB check printed '$v'"
log "check: paxosstore/node:local LevelDB synced put/get -> ok"

# Old versions of these images that a rebuild left untagged.
docker image prune -f --filter label=org.paxosstore.image=true >/dev/null 2>&1 || true
log "done in $(( $(now_ms) - T_ALL )) ms"

#!/usr/bin/env node
// Prints a fingerprint (sha256, hex) of everything paxosstore/node:local is built from: the
// sources, the package files, the nats configs, the image build script, and the Node version.
// build.sh puts it on the image as the label org.paxosstore.source; the container tests
// (test/containers/docker.ts) rebuild the images when the label differs from the tree's.
//
// Usage: node infra/images/fingerprint.mjs [ROOT]    (ROOT: the repository, default the cwd)
import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const INPUTS = [
  "src",
  "bin",
  "package.json",
  "package-lock.json",
  "tsconfig.json",
  "tsconfig.build.json",
  "infra/nats",
  "infra/images/build.sh",
  "infra/images/fingerprint.mjs",
];

function files(root, rel, out) {
  const abs = path.join(root, rel);
  if (!existsSync(abs)) return;
  if (statSync(abs).isDirectory()) {
    for (const name of readdirSync(abs)) files(root, path.posix.join(rel, name), out);
  } else {
    out.push(rel);
  }
}

export function sourceFingerprint(root = process.cwd()) {
  const list = [];
  for (const input of INPUTS) files(root, input, list);
  list.sort(); // repository paths are ASCII: code-unit order is byte order
  const all = createHash("sha256");
  all.update(`node ${process.version}\n`);
  for (const rel of list) {
    all.update(`${createHash("sha256").update(readFileSync(path.join(root, rel))).digest("hex")}  ${rel}\n`);
  }
  return all.digest("hex");
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  console.log(sourceFingerprint(path.resolve(process.argv[2] ?? ".")));
}

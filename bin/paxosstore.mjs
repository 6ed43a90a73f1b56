#!/usr/bin/env node
// The `paxosstore` command. Runs the compiled CLI (npm run build; `npm ci` builds it too).
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

const main = fileURLToPath(new URL("../dist/cli/main.js", import.meta.url));
if (!existsSync(main)) {
  console.error("paxosstore: the CLI is not built yet: run `npm run build` (or `npm ci`) in the project folder.");
  process.exit(2);
}
await import(main);

// `paxosstore backup` and `paxosstore restore` (src/actors/backup.ts says what they promise).
//   paxosstore backup --from http://127.0.0.1:8222 --out n1.backup   # the node serves meanwhile
//   paxosstore restore --file n1.backup --node-id n1 --cluster prod --data-dir /var/lib/paxosstore/data
// Exit codes: 0 done, 2 usage or a backup/data directory that does not fit, 4 the node's
// health endpoint cannot be reached, 5 anything else.

import { createWriteStream } from "node:fs";
import { rename, rm } from "node:fs/promises";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { Command } from "commander";

export function registerBackupCommands(program: Command): void {
  program
    .command("backup")
    .description("copy a running node's data (one consistent snapshot) into a file, through its health endpoint (--http-port)")
    .requiredOption("--from <url>", "the node's health endpoint on this machine, e.g. http://127.0.0.1:8222")
    .requiredOption("--out <file>", "the backup file to write")
    .action(async (o: { from: string; out: string }) => {
      const { readBackup } = await import("../actors/backup.js");
      const tmp = `${o.out}.partial`;
      let res: Response;
      try {
        res = await fetch(new URL("/backup", o.from));
      } catch (e) {
        process.stderr.write(`paxosstore backup: cannot reach ${o.from}: ${(e as Error).message}\n`);
        return void (process.exitCode = 4);
      }
      if (!res.ok || res.body === null) {
        process.stderr.write(`paxosstore backup: ${o.from} answered ${res.status}: ${(await res.text()).trim()}\n`);
        return void (process.exitCode = res.status === 404 || res.status === 403 ? 2 : 5);
      }
      try {
        await pipeline(Readable.fromWeb(res.body as never), createWriteStream(tmp));
        // Read back before it counts: a cut-off stream has no trailer and fails here.
        const { header, records } = await readBackup(tmp);
        await rename(tmp, o.out);
        process.stdout.write(`${JSON.stringify({ ok: true, file: o.out, node: header.nodeId, cluster: header.cluster, records: records.length, createdAt: header.createdAt })}\n`);
      } catch (e) {
        await rm(tmp, { force: true });
        process.stderr.write(`paxosstore backup: ${(e as Error).message}\n`);
        process.exitCode = 5;
      }
    });

  program
    .command("restore")
    .description("seed an EMPTY data directory of a stopped node from its backup; the node then recovers every group from its peers before it votes (lost-disk mode)")
    .requiredOption("--file <file>", "the backup file")
    .requiredOption("--node-id <id>", "the node the backup is of (checked)")
    .requiredOption("--cluster <name>", "its cluster (checked)")
    .requiredOption("--data-dir <dir>", "the node's data directory: empty or not yet there")
    .action(async (o: { file: string; nodeId: string; cluster: string; dataDir: string }) => {
      const { BackupError, restoreBackup } = await import("../actors/backup.js");
      try {
        const r = await restoreBackup(o.file, o.dataDir, o.nodeId, o.cluster);
        process.stdout.write(`${JSON.stringify({ ok: true, dataDir: o.dataDir, node: r.header.nodeId, records: r.records, groups: r.groups, backupCreatedAt: r.header.createdAt, next: "start the node: it recovers every group from its peers before it votes in it" })}\n`);
      } catch (e) {
        process.stderr.write(`paxosstore restore: ${(e as Error).message}\n`);
        process.exitCode = e instanceof BackupError ? 2 : 5;
      }
    });
}

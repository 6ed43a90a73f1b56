// `paxosstore unfence-group`: the operator's way out when a key-group cannot recover by itself
// because a majority of its replicas lost it (two of three failed their checksum, or two nodes
// lost their disks). Each of them is a recovering learner that neither votes nor answers probes
// (protocol/recovery.ts), so no majority can ever form again and the group is stuck for good.
//
// Run on ONE of those replicas, with its node stopped, it clears the group's recovering flag:
// that replica then votes again with what it holds (nothing, after a loss), catches up from the
// surviving replica, and with it forms a majority. The survivor's chosen state becomes the
// group's truth. The price, spelled out by the command and docs/OPERATIONS.md: a write chosen
// only by the two replicas that lost it (the survivor never accepted it) is gone, and a
// different value may be chosen at its index; and unfencing BOTH lost replicas would let them
// choose values without the survivor, against its history.

import { existsSync } from "node:fs";
import path from "node:path";
import type { Command } from "commander";

export const RISK = [
  "unfence-group makes this replica vote again although it forgot what it promised and accepted in the group.",
  "Do it on ONE of the replicas that lost the group, never on two: two unfenced replicas form a majority without the survivor and can rewrite the group's whole history.",
  "The group's truth becomes what the surviving replica has chosen: writes acknowledged by the two replicas that lost the group and never accepted by the survivor are lost, and another value may be chosen at their index.",
  "Check first that the survivor is up and is the replica with the most of the group (docs/OPERATIONS.md, \"When a majority of a group's replicas lost it\").",
].join("\n");

export function registerUnfenceCommand(program: Command): void {
  program
    .command("unfence-group")
    .description("let a stopped node vote again in a group it is recovering, taking the surviving replica's data as the group's truth (risky: read docs/OPERATIONS.md)")
    .requiredOption("--data-dir <dir>", "the STOPPED node's data directory")
    .requiredOption("--group <name>", "the key-group (a key written without a group is its own group)")
    .option("--yes-lose-unreplicated-writes", "confirm the risk (without it the command only explains it)")
    .action(async (opts: { dataDir: string; group: string; yesLoseUnreplicatedWrites?: boolean }) => {
      process.exit(await unfenceGroup(opts.dataDir, opts.group, opts.yesLoseUnreplicatedWrites === true, (line) => console.error(line)));
    });
}

/** Returns the exit code: 0 done, 1 refused or nothing to do, 2 the directory is unusable. */
export async function unfenceGroup(dataDir: string, group: string, confirmed: boolean, say: (line: string) => void): Promise<number> {
  const { LevelStorage } = await import("../storage/leveldb.js");
  const { isStorageError } = await import("../storage/errors.js");
  const { EMPTY_META } = await import("../protocol/durable.js");
  // Opening would create a missing directory: a mistyped path must not look like a fresh node.
  if (!existsSync(path.join(dataDir, "CURRENT"))) {
    say(`unfence-group: ${dataDir} is not a node's data directory`);
    return 2;
  }
  const storage = new LevelStorage(dataDir);
  try {
    await storage.open();
  } catch (e) {
    say(isStorageError(e, "STORAGE_LOCKED") ? `unfence-group: ${dataDir} is in use: stop the node first` : `unfence-group: cannot open ${dataDir}: ${(e as Error).message}`);
    return 2;
  }
  try {
    let meta = EMPTY_META;
    let reset = false;
    try {
      const stored = await storage.loadGroup(group);
      // No record: after a lost disk the node would start the group in recovery (lostDisk.ts);
      // an empty, non-recovering record is what a fresh replica has, and stops that.
      if (stored === null) {
        say(`unfence-group: ${dataDir} holds no record of group ${JSON.stringify(group)} (a lost disk starts it in recovery): the fix writes an empty record that votes`);
      } else if (stored.meta.recovering !== true) {
        say(`unfence-group: group ${JSON.stringify(group)} is not recovering on this node: nothing to unfence`);
        return 1;
      } else {
        meta = { chosen: stored.meta.chosen, promised: stored.meta.promised, accepted: stored.meta.accepted };
      }
    } catch (e) {
      // Still corrupt (the node never loaded it since): it is wiped here, as the node would.
      if (!isStorageError(e, "STORAGE_CORRUPT")) throw e;
      reset = true;
    }
    if (!confirmed) {
      say(`unfence-group: group ${JSON.stringify(group)} does not vote on this node. Not changed.\n${RISK}\nRun again with --yes-lose-unreplicated-writes to do it.`);
      return 1;
    }
    await storage.commit([{ group, meta, reset, keys: [], requests: [], forgetRequests: [] }]);
    say(`unfence-group: group ${JSON.stringify(group)} on ${dataDir} votes again at the node's next start${reset ? " (its corrupt records were wiped)" : ""}; it catches up from the surviving replica`);
    return 0;
  } finally {
    await storage.close();
  }
}

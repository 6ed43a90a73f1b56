// Agreement: never two different values chosen for one (group, index), across crashes and
// restarts. Every replica's `chosen` is observed after every step (and after a restart), and
// the first sighting of each (group, index) is kept as the global chosen log; every later
// sighting must carry the same value.
//
// A replica normally advances one index at a time (it opens i only once it holds i-1). When
// it jumps further (data-level catch-up), it must land on an index some replica already
// reached one step at a time, so the global log has no gaps and every entry in it was
// observed being applied in order.

import type { ChosenEntry } from "../../../src/protocol/messages.js";
import { fail } from "./failure.js";
import { show } from "./format.js";

export class ChosenLog {
  /** group -> index -> the first sighting of the entry. */
  private readonly groups = new Map<string, Map<number, { entry: ChosenEntry; commands: string; seenAt: string }>>();

  entry(group: string, index: number): ChosenEntry | undefined {
    return this.groups.get(group)?.get(index)?.entry;
  }

  /** The highest index known chosen for the group (0: none). */
  lastIndex(group: string): number {
    const g = this.groups.get(group);
    if (g === undefined) return 0;
    let last = 0;
    for (const i of g.keys()) if (i > last) last = i;
    return last;
  }

  groupNames(): string[] {
    return [...this.groups.keys()];
  }

  has(group: string, index: number): boolean {
    return this.groups.get(group)?.has(index) ?? false;
  }

  /** Records a first sighting, or checks a later one against it. */
  observe(group: string, entry: ChosenEntry, where: string): void {
    let g = this.groups.get(group);
    if (g === undefined) {
      g = new Map();
      this.groups.set(group, g);
    }
    const known = g.get(entry.index);
    const commands = show(entry.value.commands);
    if (known === undefined) {
      g.set(entry.index, { entry, commands, seenAt: where });
      return;
    }
    if (known.entry.value.id !== entry.value.id) {
      fail(
        "agreement",
        `group ${group} index ${entry.index}: value ${entry.value.id} at ${where}, but ${known.entry.value.id} was chosen there first (seen at ${known.seenAt})`,
      );
    }
    // One value id, two contents: the core rewrote a value in place (or ids are not unique).
    if (known.commands !== commands) {
      fail(
        "agreement",
        `group ${group} index ${entry.index}: value ${entry.value.id} has different commands at ${where} than at ${known.seenAt}: ${commands} vs ${known.commands}`,
      );
    }
  }
}

export class AgreementChecker {
  readonly log = new ChosenLog();
  /** replica ("node/group") -> last observed chosen index. */
  private readonly lastSeen = new Map<string, number>();

  /**
   * Observes a replica's `chosen` after a step. `restored`: the replica was just rebuilt from
   * its durable image, so its index may go back (to what it had synced), never to a new value.
   */
  observe(node: string, group: string, chosen: ChosenEntry | null, restored: boolean, where: string): void {
    const key = `${node}/${group}`;
    const index = chosen === null ? 0 : chosen.index;
    const previous = this.lastSeen.get(key) ?? 0;
    this.lastSeen.set(key, index);
    if (chosen === null) {
      if (!restored && previous > 0) fail("agreement", `${key}: chosen went from ${previous} back to none at ${where}`);
      return;
    }
    if (index === previous && !restored) {
      // Same index as last time: only check it did not change value (cheap: ids only).
      const known = this.log.entry(group, index);
      if (known !== undefined && known.value.id !== chosen.value.id) this.log.observe(group, chosen, where);
      return;
    }
    if (index < previous && !restored) {
      fail("agreement", `${key}: chosen went back from ${previous} to ${index} without a restart at ${where}`);
    }
    if (index > previous + 1 && !this.log.has(group, index)) {
      fail(
        "agreement",
        `${key}: chosen jumped from ${previous} to ${index} at ${where}, an index no replica had reached one step at a time`,
      );
    }
    if (restored && !this.log.has(group, index)) {
      fail("agreement", `${key}: restarted with chosen ${index} on disk, which was never observed chosen (at ${where})`);
    }
    this.log.observe(group, chosen, where);
  }
}

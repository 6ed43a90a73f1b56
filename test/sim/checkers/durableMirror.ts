// Durable mirror: after every step, what the replica's disk will hold once its pending
// persists land must equal what its durable state says (meta, data, remembered request ids).
// A step that changes durable state without saying so in its Persist, or a Persist that
// says something else (an id both added and forgotten, say), breaks it at the step that did
// it, not only when a crash happens to land in the gap and a restart finds the difference
// (issue 8: an id evicted and re-applied in one step vanished from disk this way; the
// end-of-seed and restart comparisons saw it in one seed of thousands).

import { applyPersist, type DurableGroup, type Persist } from "../../../src/protocol/durable.js";
import type { GroupState } from "../../../src/protocol/state.js";
import { assertStorableBatch } from "../../../src/storage/storage.js";
import { fail } from "./failure.js";
import { groupDigest } from "./convergence.js";

/** The disk image plus every persist queued so far: what a crash-free future holds. */
export class DurableMirror {
  private readonly image: DurableGroup;

  constructor(disk: DurableGroup) {
    this.image = { meta: disk.meta, keys: new Map(disk.keys), requests: disk.requests.slice() };
  }

  /** Queues `persist`; objects to one that no storage engine would take (assertStorableBatch). */
  apply(node: string, persist: Persist, where: string): void {
    try {
      assertStorableBatch([persist]);
    } catch (e) {
      fail("durable-mirror", `${node}/${persist.group} ${where}: storage would refuse its persist: ${(e as Error).message}`);
    }
    applyPersist(this.image, persist);
  }

  /**
   * Throws unless `state`'s durable part equals the mirrored image. The meta on every step;
   * data and request ids (a digest of the whole group) only after a step that persisted some
   * (cheap enough to keep on in every seed; a silent change of them still shows at the next
   * such step, or at a restart).
   */
  check(node: string, state: GroupState, persist: Persist | null, where: string): void {
    const m = this.image.meta;
    const meta = JSON.stringify({ chosen: state.chosen?.index ?? 0, value: state.chosen?.value.id ?? null, promised: state.promised, accepted: state.accepted && { ballot: state.accepted.ballot, value: state.accepted.value.id }, recovering: state.recovering !== null, config: state.membersStored ? state.members : null, joining: state.joining });
    const disk = JSON.stringify({ chosen: m.chosen?.index ?? 0, value: m.chosen?.value.id ?? null, promised: m.promised, accepted: m.accepted && { ballot: m.accepted.ballot, value: m.accepted.value.id }, recovering: m.recovering === true, config: m.config ?? null, joining: m.joining ?? null });
    const group = state.config.group;
    if (meta !== disk) fail("durable-mirror", `${node}/${group} ${where}: its durable meta is ${meta} but its persists leave ${disk} on disk`);
    if (persist === null || (!persist.reset && persist.keys.length === 0 && persist.requests.length === 0 && persist.forgetRequests.length === 0)) return;
    const requests = new Map([...this.image.requests].sort((a, b) => a.seq - b.seq).map((r) => [r.requestId, r] as const));
    const held = groupDigest(state.data, state.requests);
    const persisted = groupDigest(this.image.keys, requests);
    if (held !== persisted) fail("durable-mirror", `${node}/${group} ${where}: it holds\n    ${held}\n  but its persists leave\n    ${persisted}`);
  }
}

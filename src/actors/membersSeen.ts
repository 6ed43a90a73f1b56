// What this node durably remembers of the other members: that it has heard from them, and under
// which identity (identity.ts). A node with an empty data directory asks its peers about itself
// (newOrLost.ts): a peer that remembers it proves the cluster has seen it, so the empty directory
// is a LOST disk, not a new node.
//
// A member is remembered when it asks (it registers its identity with the question, synced
// before the answer leaves: a new node registers with every peer before it votes at all), and,
// with no identity, when any frame from it is heard (nodes whose data predates identities).

import type { Logger } from "pino";
import type { Storage } from "../storage/storage.js";

export const MEMBERS_SEEN_RECORD = "members-seen";

export interface SeenMember {
  /** The identity it last presented; null when only heard from (no identity given). */
  readonly identityId: string | null;
  /** ms since the epoch, first heard of. */
  readonly since: number;
  /**
   * It presented this identity after having been seen without it (another identity, or frames
   * before any identity): the identity belongs to a node that lost its disk. Kept so that the
   * node, asking again after a crash under the same identity, still learns it is not new.
   */
  readonly replacedEarlier?: true;
}

export class MembersSeen {
  private seen = new Map<string, SeenMember>();
  // One write at a time, each of the whole record: no update can overwrite a newer one.
  private tail: Promise<void> = Promise.resolve();

  constructor(
    private readonly storage: Storage,
    private readonly log: Logger,
  ) {}

  async load(): Promise<void> {
    const stored = await this.storage.getNodeRecord(MEMBERS_SEEN_RECORD);
    if (stored === undefined) return;
    if (typeof stored !== "object" || stored === null) throw new Error(`the ${MEMBERS_SEEN_RECORD} record is malformed`);
    for (const [member, entry] of Object.entries(stored as Record<string, SeenMember>))
      this.seen.set(member, { identityId: entry.identityId ?? null, since: entry.since ?? 0, ...(entry.replacedEarlier === true ? { replacedEarlier: true as const } : {}) });
  }

  get(member: string): SeenMember | undefined {
    return this.seen.get(member);
  }

  /**
   * Remembers `member` (under `identityId` when given) and resolves once that is on disk, with
   * what was remembered before. Without an identity, a member already known is left as it is.
   */
  note(member: string, identityId: string | null): Promise<SeenMember | undefined> {
    const before = this.seen.get(member);
    if (before !== undefined && (identityId === null || before.identityId === identityId)) return this.tail.then(() => before);
    if (before?.identityId && identityId !== null)
      this.log.warn({ member, was: before.identityId, now: identityId }, `member ${member} presents a new identity: its data directory was replaced (it recovers as a node that lost its disk)`);
    const replacedEarlier = before !== undefined && (before.replacedEarlier === true || before.identityId !== identityId);
    this.seen.set(member, { identityId, since: before?.since ?? Date.now(), ...(replacedEarlier ? { replacedEarlier: true as const } : {}) });
    const snapshot = Object.fromEntries(this.seen);
    const written = this.tail.then(() => this.storage.putNodeRecords([[MEMBERS_SEEN_RECORD, snapshot]]));
    this.tail = written.catch(() => undefined);
    return written.then(() => before);
  }
}

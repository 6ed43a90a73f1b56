// Where key-group actors live on a node: spawned on first message under sharded parents,
// found through a plain Map, stopped when idle or when more than `maxActive` are in memory
// (least recently used first: the Map is kept in LRU order).
//
// Why not one parent: nact copies a parent's children map for every message the parent
// handles, and walks the path on every dispatch; a flat Map and a few dozen shard parents
// keep both cheap with 100k groups.
// Why not nact's `shutdownAfter`: its timer stops the actor between two dispatches, and a
// message dispatched to a stopped actor is silently dropped. Here passivation is decided by
// the registry, synchronously, only for a group whose mailbox is empty and whose core waits
// for nothing; the entry leaves the Map before the actor stops, so the next message spawns a
// fresh actor that reloads the group from disk.

import { dispatch, spawn, spawnStateless, stop, type ActorSystemRef, type Ref } from "nact";
import type { GroupState } from "../protocol/state.js";
import { groupActor, isQuiescent, newGroupHandle, type GroupEnv, type GroupHandle, type GroupMsg } from "./keyGroup.js";

interface Live {
  readonly handle: GroupHandle;
  readonly ref: Ref<GroupMsg>;
}

export class GroupRegistry {
  private readonly live = new Map<string, Live>();
  /** Groups whose actor crashed with persists still on their way to disk, until they land. */
  private readonly settling = new Map<string, Promise<void>>();
  private readonly shards: Ref<unknown>[] = [];
  private readonly actorFn: ReturnType<typeof groupActor>;
  private spawned = 0;
  passivated = 0;
  passivatedOverCap = 0;

  /** `maxActive`: groups held in memory at most (quiescent ones beyond it are passivated, LRU first). */
  constructor(
    system: ActorSystemRef,
    private readonly env: GroupEnv,
    private readonly onGroupCrash: (group: string, error: unknown) => void,
    shardCount = 32,
    private readonly maxActive = Number.POSITIVE_INFINITY,
  ) {
    for (let i = 0; i < shardCount; i++) this.shards.push(spawnStateless(system, () => undefined, `shard-${i}`));
    this.actorFn = groupActor(env);
  }

  get size(): number {
    return this.live.size;
  }

  /** The loaded core state of a live group, else null (for progress reports; never mutate it). */
  replicaOf(group: string): GroupState | null {
    return this.live.get(group)?.handle.replica ?? null;
  }

  /** The groups whose actors are in memory now. */
  liveGroups(): string[] {
    return [...this.live.keys()];
  }

  /** Is the group's actor in memory? */
  isLive(group: string): boolean {
    return this.live.has(group);
  }

  dispatch(group: string, msg: GroupMsg): void {
    let live = this.live.get(group);
    const spawned = live === undefined;
    if (live === undefined) {
      live = this.spawn(group);
    } else {
      // The Map's order is the LRU order: the most recently used group goes to the end.
      this.live.delete(group);
      this.live.set(group, live);
    }
    live.handle.inflight++;
    dispatch(live.ref, msg);
    // After the dispatch: the new group is busy now, so the walk cannot pick it.
    if (spawned && this.live.size > this.maxActive) this.passivateOverCap();
  }

  /**
   * Over the cap: passivates the least recently used quiescent groups (from the front of the
   * Map) down to 90% of it, so the walk is paid once per tenth of the cap, not per spawn. A
   * busy group is skipped (passivating it would drop what it waits for); when too many are
   * busy the node stays over the cap until they settle, and the next spawn tries again. The
   * walk stops after a bounded number of busy groups, so a spawn never scans the whole Map.
   */
  private passivateOverCap(): void {
    const target = Math.floor(this.maxActive * 0.9);
    let skipped = 0;
    let n = 0;
    for (const [group, live] of this.live) {
      if (this.live.size <= target || skipped > 1024) break;
      if (!isQuiescent(live.handle)) {
        skipped++;
        continue;
      }
      this.passivate(group, live);
      n++;
    }
    this.passivated += n;
    this.passivatedOverCap += n;
    for (let i = 0; i < n; i++) this.env.metrics?.groupPassivated("cap");
  }

  private passivate(group: string, live: Live): void {
    const h = live.handle;
    this.live.delete(group);
    if (h.timer !== null) clearTimeout(h.timer);
    stop(live.ref);
  }

  private spawn(group: string): Live {
    const handle = newGroupHandle(group, this.env.now());
    handle.loadAfter = this.settling.get(group) ?? null;
    const shard = this.shards[shardOf(group, this.shards.length)]!;
    const ref = spawn(shard as never, this.actorFn as never, `g${++this.spawned}`, {
      initialState: handle,
      onCrash: (_msg: unknown, error: unknown, ctx: { stop: unknown }) => {
        // A bug or a load failure: drop the actor; the next message spawns a new one, which
        // reloads the group from disk once every persist of this one has landed (a failed
        // persist is fatal for the node anyway). Its releases still go out after their
        // persists, in order: they are what this actor made durable.
        if (this.live.get(group)?.handle === handle) this.live.delete(group);
        if (handle.timer !== null) clearTimeout(handle.timer);
        if (handle.driver !== null && handle.driver.pendingPersists > 0) {
          const settled = handle.driver.settled();
          this.settling.set(group, settled);
          void settled.then(() => {
            if (this.settling.get(group) === settled) this.settling.delete(group);
          });
        }
        this.onGroupCrash(group, error);
        return ctx.stop;
      },
    } as never) as Ref<GroupMsg>;
    const live = { handle, ref };
    this.live.set(group, live);
    return live;
  }

  /** Stops every group actor idle for `idleMs`; returns how many. */
  passivateIdle(now: number, idleMs: number): number {
    let n = 0;
    for (const [group, live] of this.live) {
      const h = live.handle;
      if (now - h.lastActive < idleMs || !isQuiescent(h)) continue;
      this.passivate(group, live);
      n++;
    }
    this.passivated += n;
    for (let i = 0; i < n; i++) this.env.metrics?.groupPassivated("idle");
    return n;
  }

  /** True while any group actor has a message dispatched and not yet handled. */
  mailboxesBusy(): boolean {
    for (const live of this.live.values()) if (live.handle.inflight > 0) return true;
    return false;
  }

  /** True while any group has work in flight (used by graceful shutdown). */
  busy(): boolean {
    for (const live of this.live.values()) if (!isQuiescent(live.handle)) return true;
    return false;
  }

  stopAll(): void {
    for (const live of this.live.values()) {
      if (live.handle.timer !== null) clearTimeout(live.handle.timer);
      stop(live.ref);
    }
    this.live.clear();
  }
}

function shardOf(group: string, n: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < group.length; i++) h = Math.imul(h ^ group.charCodeAt(i), 0x01000193);
  return (h >>> 0) % n;
}

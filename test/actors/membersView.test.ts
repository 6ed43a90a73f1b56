// The node's membership view (issue 13): where a group no node holds is born in each phase of a
// change, how requests are routed while groups move, and when the admin op may take a change's
// next step (actors/membersView.ts, actors/membersAdmin.ts).

import pino from "pino";
import { describe, expect, it } from "vitest";
import { whyNot, type NodeReport } from "../../src/actors/membersAdmin.js";
import { MEMBERS_GROUP, MembersViewHolder, type MembersView } from "../../src/actors/membersView.js";
import type { MembershipStatus } from "../../src/protocol/api.js";
import { replicasFor } from "../../src/protocol/placement.js";
import { MemoryStorage } from "../../src/storage/memory.js";

const founders = ["n1", "n2", "n3"];
const five = ["n1", "n2", "n3", "n4", "n5"];

async function holder(self = "n1"): Promise<MembersViewHolder> {
  const h = new MembersViewHolder(self, founders, 3, new MemoryStorage(), pino({ level: "silent" }));
  await h.load();
  return h;
}

const view = (v: Partial<MembersView>): MembersView => ({ epoch: 1, members: five, previous: founders, phase: "migrating", version: 1, ...v });

describe("membership view: births", () => {
  it("stable: a group is born in placement(members) at the epoch", async () => {
    const h = await holder();
    await h.adopt(view({ epoch: 1, previous: [], phase: "stable", version: 3 }));
    expect(h.birth("g", true)).toEqual({ epoch: 1, replicas: replicasFor("g", five) });
  });

  it("migrating: still born in the old placement at the old epoch, as on a node that has not heard of the change", async () => {
    const h = await holder();
    expect(h.birth("g", true)).toEqual({ epoch: 0, replicas: replicasFor("g", founders) });
    await h.adopt(view({ version: 1 }));
    expect(h.birth("g", true)).toEqual({ epoch: 0, replicas: replicasFor("g", founders) });
  });

  it("sealing: no node begins a birth, but takes part in an old-placement birth a migrating node began", async () => {
    const h = await holder();
    await h.adopt(view({ phase: "sealing", version: 2 }));
    expect(h.birth("g", true)).toBeNull();
    expect(h.birth("g", false)).toEqual({ epoch: 0, replicas: replicasFor("g", founders) });
  });

  it("sealed: no birth at all (between old-placement and new-placement births)", async () => {
    const h = await holder();
    await h.adopt(view({ phase: "sealed", version: 3 }));
    expect(h.birth("g", true)).toBeNull();
    expect(h.birth("g", false)).toBeNull();
  });

  it("the membership log is always born in the founders' placement at epoch 0", async () => {
    const h = await holder();
    await h.adopt(view({ epoch: 4, members: ["n4", "n5", "n6"], previous: [], phase: "stable", version: 9 }));
    expect(h.birth(MEMBERS_GROUP, true)).toEqual({ epoch: 0, replicas: replicasFor(MEMBERS_GROUP, founders) });
  });

  it("routes to the old placement first while groups move, then the new; stored views survive a restart; older views are ignored", async () => {
    const storage = new MemoryStorage();
    const h = new MembersViewHolder("n1", founders, 3, storage, pino({ level: "silent" }));
    await h.adopt(view({ version: 5 }));
    const route = h.route("g");
    expect(route.slice(0, 3)).toEqual(replicasFor("g", founders));
    for (const n of replicasFor("g", five)) expect(route).toContain(n);
    expect(await h.adopt(view({ version: 4, phase: "stable" }))).toBe(false);
    const again = new MembersViewHolder("n1", founders, 3, storage, pino({ level: "silent" }));
    await again.load();
    expect(again.view).toEqual(h.view);
  });
});

describe("membership admin: a change's next step", () => {
  const m = (s: Partial<MembershipStatus>): MembershipStatus => ({ epoch: 1, members: five, previous: founders, phase: "migrating", version: 1, moved: 0, left: 0, sweptVersion: 1, held: 3, removedHeld: 0, removed: false, ...s });
  const v = view({ version: 1 });
  const all = (s: Partial<MembershipStatus> = {}): NodeReport[] => five.map((node) => ({ node, membership: m(s) }));

  it("waits for every member to answer, learn the view, sweep after it, and have nothing left", () => {
    expect(whyNot(v, all())).toBeNull();
    expect(whyNot(v, [...all().slice(1), { node: "n1", membership: null }])).toContain("n1 to answer");
    expect(whyNot(v, all({ version: 0 }))).toContain("to learn");
    expect(whyNot(v, all({ sweptVersion: 0 }))).toContain("to sweep");
    expect(whyNot(v, all({ left: 4 }))).toContain("to move 4 more groups");
    // Migrating under load: a few groups born meanwhile do not hold up sealing; they do sealed.
    expect(whyNot(v, all({ left: 2 }))).toBeNull();
    expect(whyNot({ ...v, phase: "sealing" }, all({ left: 1 }))).toContain("to move 1 more group");
  });

  it("does not wait for a removed node that is gone", () => {
    const shrink = view({ members: founders, previous: five, version: 1 });
    const reports: NodeReport[] = [...founders.map((node) => ({ node, membership: m({}) })), { node: "n4", membership: null }, { node: "n5", membership: null }];
    expect(whyNot(shrink, reports)).toBeNull();
  });
});

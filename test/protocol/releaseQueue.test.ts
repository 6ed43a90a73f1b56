// The release queue (src/protocol/releaseQueue.ts): the Ready contract both drivers of the core
// share. Persist before release, in order per replica; answersNow at once; persists complete
// in order or it throws; a failed persist releases nothing ever again; one timer rule.

import { describe, expect, it } from "vitest";
import type { Persist } from "../../src/protocol/durable.js";
import type { Answer, Ready } from "../../src/protocol/io.js";
import type { Outbound } from "../../src/protocol/messages.js";
import { nextTimer, ReleaseQueue } from "../../src/protocol/releaseQueue.js";

const persist: Persist = { group: "g", meta: { chosen: null, promised: { round: 1, node: "n1" }, accepted: null }, reset: false, keys: [], requests: [], forgetRequests: [] };

function out(n: number): Outbound {
  return { to: "n2", msg: { type: "promise", group: "g", index: n, ballot: { round: n, node: "n1" }, accepted: null } };
}

function answer(call: number): Answer {
  return { call, outcome: { kind: "error", code: "timeout", message: "" } };
}

function ready(parts: Partial<Ready>): Ready {
  return { persist: null, send: [], sendNow: [], answers: [], answersNow: [], proposed: null, wakeAt: null, ...parts };
}

describe("release queue", () => {
  it("with nothing on its way to disk, a step without a persist goes at once", () => {
    const q = new ReleaseQueue();
    const a = q.admit(ready({ send: [out(1)], answers: [answer(1)] }));
    expect(a.persist).toBeNull();
    expect(a.now).toEqual({ send: [out(1)], answers: [answer(1)] });
  });

  it("sendNow (a proposer's Accept, a decided Chosen) leaves at once, before the step's persist and earlier ones", () => {
    const q = new ReleaseQueue();
    const first = q.admit(ready({ persist, send: [out(1)] }));
    const a = q.admit(ready({ persist, sendNow: [out(2)], send: [out(3)] }));
    expect(a.now).toEqual({ send: [out(2)], answers: [] });
    expect(q.durable(first.persist!.ticket)).toEqual({ send: [out(1)], answers: [] });
    expect(q.durable(a.persist!.ticket)).toEqual({ send: [out(3)], answers: [] });
  });

  it("a step's sends and answers wait for its persist", () => {
    const q = new ReleaseQueue();
    const a = q.admit(ready({ persist, send: [out(1)], answers: [answer(1)] }));
    expect(a.now).toEqual({ send: [], answers: [] });
    expect(a.persist?.record).toBe(persist);
    expect(q.pendingPersists).toBe(1);
    expect(q.durable(a.persist!.ticket)).toEqual({ send: [out(1)], answers: [answer(1)] });
    expect(q.pendingPersists).toBe(0);
  });

  it("a step without a persist waits behind every earlier persist (it may repeat a Promise)", () => {
    const q = new ReleaseQueue();
    const first = q.admit(ready({ persist, send: [out(1)] }));
    const second = q.admit(ready({ persist, send: [out(2)] }));
    const repeat = q.admit(ready({ send: [out(3)], answers: [answer(3)] }));
    expect(repeat.now).toEqual({ send: [], answers: [] });
    expect(q.durable(first.persist!.ticket)).toEqual({ send: [out(1)], answers: [] });
    expect(q.durable(second.persist!.ticket)).toEqual({ send: [out(2), out(3)], answers: [answer(3)] });
  });

  it("answersNow leave at once, even before earlier persists", () => {
    const q = new ReleaseQueue();
    q.admit(ready({ persist, send: [out(1)] }));
    const a = q.admit(ready({ persist, answers: [answer(2)], answersNow: [answer(1)] }));
    expect(a.now).toEqual({ send: [], answers: [answer(1)] });
    const b = q.admit(ready({ answersNow: [answer(3)] }));
    expect(b.now).toEqual({ send: [], answers: [answer(3)] });
  });

  it("a persist reported out of order throws (the disk reordered one replica's writes)", () => {
    const q = new ReleaseQueue();
    q.admit(ready({ persist, send: [out(1)] }));
    const second = q.admit(ready({ persist, send: [out(2)] }));
    expect(() => q.durable(second.persist!.ticket)).toThrow(/in order/);
    const fresh = new ReleaseQueue();
    expect(() => fresh.durable(1)).toThrow(/none/);
  });

  it("after a failed persist nothing is released again", () => {
    const q = new ReleaseQueue();
    const a = q.admit(ready({ persist, send: [out(1)] }));
    q.fail();
    expect(q.pendingPersists).toBe(0);
    expect(q.durable(a.persist!.ticket)).toEqual({ send: [], answers: [] });
    expect(q.admit(ready({ send: [out(2)], answersNow: [answer(1)] }))).toEqual({ now: { send: [], answers: [] }, persist: null, hurry: false });
  });

  it("a persist nothing waits on may wait; the first step that waits on it hurries it, once", () => {
    const q = new ReleaseQueue();
    // A learn: its answers and Chosen leave at once, nothing is held on its persist.
    const learn = q.admit(ready({ persist, sendNow: [out(1)], answersNow: [answer(1)] }));
    expect(learn.persist!.mayWait).toBe(true);
    expect(learn.hurry).toBe(false);
    // A step with nothing held does not hurry it; one whose answer waits on it does.
    expect(q.admit(ready({ answersNow: [answer(2)] })).hurry).toBe(false);
    expect(q.admit(ready({ answers: [answer(3)] })).hurry).toBe(true);
    expect(q.admit(ready({ send: [out(4)] })).hurry).toBe(false); // hurried already
    expect(q.durable(learn.persist!.ticket)).toEqual({ send: [out(4)], answers: [answer(3)] });
  });

  it("a persist something waits on does not wait, and takes the waiting ones before it along", () => {
    const q = new ReleaseQueue();
    const learn = q.admit(ready({ persist, answersNow: [answer(1)] }));
    const accept = q.admit(ready({ persist, send: [out(2)] }));
    expect(accept.persist!.mayWait).toBe(false);
    // The accept's commit carries the learn: nothing is left to hurry.
    expect(q.admit(ready({ answers: [answer(3)] })).hurry).toBe(false);
    expect(q.hurryAll()).toBe(false);
    q.durable(learn.persist!.ticket);
    // A later waiting persist alone: hurryAll (an actor settling) reports it once.
    q.durable(accept.persist!.ticket);
    q.admit(ready({ persist }));
    expect(q.hurryAll()).toBe(true);
    expect(q.hurryAll()).toBe(false);
  });

  it("the reply-before-persist break lets sends out at once; answers still wait", () => {
    const q = new ReleaseQueue({ replyBeforePersist: true });
    const a = q.admit(ready({ persist, send: [out(1)], answers: [answer(1)] }));
    expect(a.now).toEqual({ send: [out(1)], answers: [] });
    expect(q.durable(a.persist!.ticket)).toEqual({ send: [], answers: [answer(1)] });
  });
});

describe("the timer rule", () => {
  it("arms at wakeAt, rounded up, and never before the next ms", () => {
    expect(nextTimer(15.2, 10, null)).toBe(16);
    expect(nextTimer(5, 10, null)).toBe(11); // a wakeAt in the past: the next ms, not a spin
  });

  it("keeps a timer that fires no later; re-arms one that fires later", () => {
    expect(nextTimer(20, 10, 15)).toBeNull();
    expect(nextTimer(20, 10, 20)).toBeNull();
    expect(nextTimer(12, 10, 15)).toBe(12);
  });

  it("wakeAt null leaves the timer as it is", () => {
    expect(nextTimer(null, 10, null)).toBeNull();
    expect(nextTimer(null, 10, 30)).toBeNull();
  });

  it("a wakeAt that is not a time is a core bug", () => {
    expect(() => nextTimer(Number.NEGATIVE_INFINITY, 10, null)).toThrow();
    expect(() => nextTimer(Number.NaN, 10, null)).toThrow();
  });
});

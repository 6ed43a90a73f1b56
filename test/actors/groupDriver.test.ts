// The group driver (src/actors/groupDriver.ts) with recording ports: what the live actor and the
// simulation both run. Its decisions are the release queue's (tested in
// test/protocol/releaseQueue.test.ts); here: that it wires them to the ports as they say.

import { describe, expect, it } from "vitest";
import { GroupDriver, type GroupPorts } from "../../src/actors/groupDriver.js";
import type { Persist } from "../../src/protocol/durable.js";
import type { Ready } from "../../src/protocol/io.js";
import type { PeerMessage } from "../../src/protocol/messages.js";

const persist: Persist = { group: "g", meta: { chosen: null, promised: { round: 1, node: "n1" }, accepted: null }, reset: false, keys: [], requests: [], forgetRequests: [] };
const msg = (index: number): PeerMessage => ({ type: "readProbe", group: "g", probe: index });

function ready(parts: Partial<Ready>): Ready {
  return { persist: null, send: [], sendNow: [], answers: [], answersNow: [], proposed: null, wakeAt: null, ...parts };
}

class Recorder implements GroupPorts {
  readonly log: string[] = [];
  readonly disk: { durable: () => void; failed: (e: unknown) => void }[] = [];
  readonly fatals: unknown[] = [];
  persist(_record: Persist, durable: () => void, failed: (e: unknown) => void, mayWait: boolean): void {
    this.log.push(mayWait ? "persist (may wait)" : "persist");
    this.disk.push({ durable, failed });
  }
  hurry(): void {
    this.log.push("hurry");
  }
  send(to: string, m: PeerMessage): void {
    this.log.push(`send ${to} ${(m as { probe: number }).probe}`);
  }
  answer(call: number): void {
    this.log.push(`answer ${call}`);
  }
  armTimer(at: number): void {
    this.log.push(`timer ${at}`);
  }
  fatal(error: unknown): void {
    this.fatals.push(error);
  }
}

const answer = (call: number) => ({ call, outcome: { kind: "error" as const, code: "timeout" as const, message: "" } });

describe("group driver", () => {
  it("sends and answers leave only after the persists before them are durable, in order", () => {
    const ports = new Recorder();
    const driver = new GroupDriver(ports);
    driver.perform(ready({ persist, send: [{ to: "n2", msg: msg(1) }] }), 0);
    driver.perform(ready({ send: [{ to: "n3", msg: msg(2) }], answersNow: [answer(7)], answers: [answer(8)] }), 0);
    expect(ports.log).toEqual(["persist", "answer 7"]);
    expect(driver.pendingPersists).toBe(1);
    ports.disk[0]!.durable();
    expect(ports.log).toEqual(["persist", "answer 7", "send n2 1", "send n3 2", "answer 8"]);
    expect(driver.pendingPersists).toBe(0);
  });

  it("a persist nothing waits on is written with mayWait, and hurried when something does, or on settled()", async () => {
    const ports = new Recorder();
    const driver = new GroupDriver(ports);
    driver.perform(ready({ persist, answersNow: [answer(1)] }), 0);
    expect(ports.log).toEqual(["answer 1", "persist (may wait)"]);
    driver.perform(ready({ answers: [answer(2)] }), 0);
    expect(ports.log).toEqual(["answer 1", "persist (may wait)", "hurry"]);
    ports.disk[0]!.durable();
    expect(ports.log.at(-1)).toBe("answer 2");
    driver.perform(ready({ persist }), 0);
    const settled = driver.settled();
    expect(ports.log.at(-1)).toBe("hurry");
    ports.disk[1]!.durable();
    await settled;
  });

  it("a persist reported out of order stops the node and releases nothing", () => {
    const ports = new Recorder();
    const driver = new GroupDriver(ports);
    driver.perform(ready({ persist, send: [{ to: "n2", msg: msg(1) }] }), 0);
    driver.perform(ready({ persist, send: [{ to: "n2", msg: msg(2) }] }), 0);
    ports.disk[1]!.durable();
    expect(ports.fatals).toHaveLength(1);
    ports.disk[0]!.durable();
    expect(ports.log.filter((l) => l.startsWith("send"))).toEqual([]);
  });

  it("a failed persist stops the node; nothing waiting on it or later leaves", () => {
    const ports = new Recorder();
    const driver = new GroupDriver(ports);
    driver.perform(ready({ persist, send: [{ to: "n2", msg: msg(1) }] }), 0);
    ports.disk[0]!.failed(new Error("disk"));
    driver.perform(ready({ send: [{ to: "n2", msg: msg(2) }] }), 0);
    expect(ports.fatals).toHaveLength(1);
    expect(ports.log).toEqual(["persist"]);
  });

  it("arms one timer at wakeAt, keeps an earlier one, re-arms after it fired", () => {
    const ports = new Recorder();
    const driver = new GroupDriver(ports);
    driver.perform(ready({ wakeAt: 50 }), 10);
    driver.perform(ready({ wakeAt: 80 }), 20);
    driver.perform(ready({ wakeAt: 30 }), 20);
    expect(ports.log).toEqual(["timer 50", "timer 30"]);
    driver.timerFired();
    driver.perform(ready({ wakeAt: 80 }), 30);
    expect(ports.log).toEqual(["timer 50", "timer 30", "timer 80"]);
  });
});

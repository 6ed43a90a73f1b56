// The client's retry and routing rules, against FAKE nodes on a real nats-server: plain NATS
// subscribers that answer what the test wants (or nothing), so every branch is deterministic.
// Failover against real nodes is in failover.test.ts.

import { connect as natsConnect, headers as natsHeaders, type Msg, type NatsConnection, type Subscription } from "@nats-io/transport-node";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { decodeRequest, encodeResponse } from "../../src/protocol/codec.js";
import { ConflictError, NotReplicaError, TimeoutError, UnavailableError, BadRequestError, connect, replicasFor, type PaxosStoreClient } from "../../src/client/index.js";
import { ATTEMPT_MS_MIN, attemptBudgetMs, backoffMs, BACKOFF_MS_MAX, nodeDeadlineMs, isRetryable, retryWorthStarting, SUSPECT_MS } from "../../src/client/retry.js";
import { errorResponse, type ApiResponse } from "../../src/protocol/api.js";
import { startNatsServer, type NatsServer } from "../helpers/natsServer.js";

const MEMBERS = ["n1", "n2", "n3"];
const PREFIX = "paxosstore.fake";

interface Seen {
  readonly node: string | "queue";
  readonly body: Record<string, unknown>;
  readonly timeoutHeader: string | undefined;
}

/** What a fake node does with a request: answer, or stay silent (undefined). */
type Behaviour = (body: Record<string, unknown>, node: string) => ApiResponse | undefined;

let nats: NatsServer;
let server: NatsConnection;
let subs: Subscription[] = [];
let seen: Seen[] = [];
const behaviour = new Map<string, Behaviour>();

function fakeNode(node: string | "queue"): Subscription {
  const subject = node === "queue" ? `${PREFIX}.api` : `${PREFIX}.api.${node}`;
  return server.subscribe(subject, {
    queue: node === "queue" ? `${PREFIX}.api` : undefined,
    callback: (_err, msg: Msg) => {
      const encoding = msg.headers?.get("Content-Type") === "application/msgpack" ? "msgpack" : "json";
      const decoded = decodeRequest(msg.data, encoding);
      const body = (decoded.ok ? decoded.value : {}) as Record<string, unknown>;
      seen.push({ node, body, timeoutHeader: msg.headers?.get("PaxosStore-Timeout-Ms") || undefined });
      const answer = behaviour.get(node)?.(body, node);
      if (answer === undefined) return;
      const h = natsHeaders();
      h.set("Content-Type", encoding === "msgpack" ? "application/msgpack" : "application/json");
      msg.respond(encodeResponse(answer, encoding), { headers: h });
    },
  });
}

const status = (node: string): ApiResponse =>
  ({ ok: true, node, cluster: "fake", version: "0", uptimeMs: 1, members: MEMBERS, membersSeen: MEMBERS, groupsActive: 0, limits: {} }) as unknown as ApiResponse;

beforeAll(async () => {
  nats = await startNatsServer();
  server = await natsConnect({ servers: nats.url, noAsyncTraces: true });
});
afterAll(async () => {
  await server?.close();
  await nats?.stop();
});
beforeEach(() => {
  for (const s of subs) s.unsubscribe();
  subs = [];
  seen = [];
  behaviour.clear();
});

async function nodes(...ids: (string | "queue")[]): Promise<void> {
  for (const id of ids) subs.push(fakeNode(id));
  await server.flush();
}

async function client(timeoutMs = 1_000, members: readonly string[] | "learn" = MEMBERS): Promise<PaxosStoreClient> {
  return connect({ servers: nats.url, cluster: "fake", encoding: "json", timeoutMs, members: members === "learn" ? undefined : members });
}

const group = "g-1";
const [first, second, third] = replicasFor(group, MEMBERS) as [string, string, string];
const put = { ok: true, version: 7 } as ApiResponse;

describe("the policy", () => {
  it("retries only what may succeed elsewhere or later", () => {
    expect(["unavailable", "timeout", "not_replica"].every((c) => isRetryable(c as never))).toBe(true);
    expect(["bad_request", "too_large", "conflict", "internal"].some((c) => isRetryable(c as never))).toBe(false);
  });
  it("an attempt gets half the deadline while other replicas remain; the node a little less", () => {
    expect(attemptBudgetMs(5_000, 5_000, true)).toBe(2_500);
    expect(attemptBudgetMs(1_000, 5_000, true)).toBe(1_000);
    expect(attemptBudgetMs(5_000, 5_000, false)).toBe(5_000);
    expect(attemptBudgetMs(400, 400, true)).toBe(250);
    expect(nodeDeadlineMs(2_500)).toBe(2_250);
    expect(nodeDeadlineMs(100)).toBe(80);
    expect(nodeDeadlineMs(1)).toBe(1);
  });
  it("no wait on the first pass over the replicas, then jittered exponential backoff, capped", () => {
    expect(backoffMs(1, 3, 0.99)).toBe(0);
    expect(backoffMs(2, 3, 0.99)).toBe(0);
    const third = backoffMs(3, 3, 0);
    expect(third).toBeGreaterThan(0);
    expect(backoffMs(4, 3, 0)).toBe(2 * third);
    for (let a = 3; a < 40; a++) expect(backoffMs(a, 3, 0.999)).toBeLessThanOrEqual(BACKOFF_MS_MAX);
    expect(backoffMs(20, 3, 0)).toBeGreaterThanOrEqual(BACKOFF_MS_MAX / 2);
  });
  it("a retry goes only while it can still get ATTEMPT_MS_MIN (a last sliver would end unanswered: `timeout` for a refused write)", () => {
    expect(retryWorthStarting(0, ATTEMPT_MS_MIN)).toBe(true);
    expect(retryWorthStarting(0, ATTEMPT_MS_MIN - 1)).toBe(false);
    expect(retryWorthStarting(100, ATTEMPT_MS_MIN + 99)).toBe(false);
    expect(retryWorthStarting(100, 1_000)).toBe(true);
    expect(retryWorthStarting(0, 20)).toBe(false);
  });
});

describe("routing and retries", () => {
  it("sends to the preferred replica with a timeout header below the attempt's budget", async () => {
    await nodes("n1", "n2", "n3");
    for (const n of MEMBERS) behaviour.set(n, () => put);
    const c = await client(1_000);
    try {
      expect(await c.group(group).put("k", "v")).toEqual({ version: 7 });
      // (a copy to the next replica may follow if this busy machine made the answer slow: a hedge)
      expect(seen[0]!.node).toBe(first);
      const header = Number(seen[0]!.timeoutHeader);
      expect(header).toBeGreaterThan(0);
      expect(header).toBeLessThan(1_000);
      expect(typeof seen[0]!.body.requestId).toBe("string");
    } finally {
      await c.close();
    }
  });

  it("fails over on `unavailable` with the same request id", async () => {
    await nodes("n1", "n2", "n3");
    behaviour.set(first, () => errorResponse(new UnavailableError()));
    behaviour.set(second, () => put);
    const c = await client();
    try {
      expect(await c.group(group).put("k", "v")).toEqual({ version: 7 });
      // (a hedge to the third may follow when this busy machine makes the second answer slow)
      expect(seen.slice(0, 2).map((s) => s.node)).toEqual([first, second]);
      expect(new Set(seen.map((s) => s.body.requestId)).size).toBe(1);
    } finally {
      await c.close();
    }
  });

  it("fails over when the preferred replica has no responders, and tries it last for a while", async () => {
    await nodes(second, third);
    behaviour.set(second, () => put);
    behaviour.set(third, () => put);
    const c = await client();
    try {
      await c.group(group).put("k", "v", { requestId: "mine-1" });
      // No responders is not an answer, so `seen` has only the second replica.
      expect(seen.map((s) => [s.node, s.body.requestId])).toEqual([[second, "mine-1"]]);
      seen = [];
      await c.group(group).put("k", "v");
      expect(seen.map((s) => s.node)).toEqual([second]); // the suspect is not asked first
    } finally {
      await c.close();
    }
  });

  it("a replica that never answers: retried elsewhere with the same id; all silent: TimeoutError with the request id", async () => {
    await nodes("n1", "n2", "n3");
    const c = await client(1_200);
    try {
      const t0 = Date.now();
      const err = (await c.group(group).put("k", "v", { requestId: "lost-1" }).catch((e: unknown) => e)) as TimeoutError;
      const took = Date.now() - t0;
      expect(err).toBeInstanceOf(TimeoutError);
      expect(err.details).toEqual({ group, requestId: "lost-1" });
      expect(err.message).toMatch(/outcome is unknown/);
      expect(took).toBeGreaterThanOrEqual(1_100);
      expect(took).toBeLessThan(3_000); // the deadline, plus slack for a loaded machine
      expect(seen.length).toBeGreaterThanOrEqual(2);
      expect(new Set(seen.map((s) => s.body.requestId))).toEqual(new Set(["lost-1"]));
      expect(seen[0]!.node).toBe(first);
      expect(seen[1]!.node).not.toBe(first);
    } finally {
      await c.close();
    }
  });

  it("a silent preferred replica (paused): the attempt is hedged to the next replica, same request id, which answers", async () => {
    await nodes("n1", "n2", "n3");
    behaviour.set(second, () => put);
    behaviour.set(third, () => put);
    const c = await client(5_000);
    try {
      // The first replica never answers; the hedge, not the attempt's 2.5 s budget, ends the wait.
      expect(await c.group(group).put("k", "v", { requestId: "hedged-1" })).toEqual({ version: 7 });
      expect(c.stats.hedges).toBe(1);
      expect(seen.map((x) => x.node)).toEqual([first, second]);
      expect(new Set(seen.map((x) => x.body.requestId))).toEqual(new Set(["hedged-1"]));
      // It is suspect now: the next call goes to the next replica first.
      await c.group(group).get("k").catch(() => undefined);
      expect(seen[2]!.node).toBe(second);
    } finally {
      await c.close();
    }
  });

  it("a suspect whose time is up is tried again by one call at a time, until it answers ok", async () => {
    await nodes("n1", "n2", "n3");
    behaviour.set(second, () => put);
    behaviour.set(third, () => put);
    const c = await client(5_000);
    try {
      await c.group(group).put("k", "v"); // the first replica is silent: hedged, now suspect
      expect(seen.map((x) => x.node)).toEqual([first, second]);
      await new Promise((r) => setTimeout(r, SUSPECT_MS + 100)); // its suspicion runs out
      seen = [];
      await Promise.all([1, 2, 3, 4].map((i) => c.group(group).put("k", `v${i}`)));
      // One call is the trial (to the silent replica, then hedged); the others avoid it.
      expect(seen.filter((x) => x.node === first)).toHaveLength(1);
      // It answers again: the next trial succeeds and the replica is preferred once more.
      behaviour.set(first, () => put);
      await new Promise((r) => setTimeout(r, SUSPECT_MS + 100));
      seen = [];
      await c.group(group).put("k", "again");
      await c.group(group).put("k", "and again");
      expect(seen.map((x) => x.node)).toEqual([first, first]);
    } finally {
      await c.close();
    }
  });

  it("a write that timed out once and then met `unavailable` still reports an unknown outcome", async () => {
    await nodes("n1", "n2", "n3");
    behaviour.set(first, () => errorResponse(new TimeoutError()));
    behaviour.set(second, () => errorResponse(new UnavailableError()));
    behaviour.set(third, () => errorResponse(new UnavailableError()));
    const c = await client(500);
    try {
      const err = await c.group(group).delete("k").catch((e: unknown) => e);
      expect(err).toBeInstanceOf(TimeoutError);
    } finally {
      await c.close();
    }
  });

  it("reads and writes that only met `unavailable` end with UnavailableError by the deadline", async () => {
    await nodes("n1", "n2", "n3");
    for (const n of MEMBERS) behaviour.set(n, () => errorResponse(new UnavailableError()));
    // Room for several attempts even on a busy 2-core machine (seen failing with 400 ms).
    const c = await client(1_500);
    try {
      const t0 = Date.now();
      await expect(c.group(group).put("k", "v")).rejects.toBeInstanceOf(UnavailableError);
      await expect(c.group(group).get("k")).rejects.toBeInstanceOf(UnavailableError);
      expect(Date.now() - t0).toBeLessThan(10_000);
      expect(seen.length).toBeGreaterThan(2); // it did retry, with backoff
    } finally {
      await c.close();
    }
  });

  it("never retries bad_request, too_large, conflict or internal", async () => {
    await nodes("n1", "n2", "n3");
    const c = await client();
    try {
      behaviour.set(first, () => errorResponse(new BadRequestError("key", "nope")));
      await expect(c.group(group).put("k", "v")).rejects.toBeInstanceOf(BadRequestError);
      behaviour.set(first, () => errorResponse(new ConflictError("k", 3, 9)));
      const conflict = (await c.group(group).cas("k", 3, "v").catch((e: unknown) => e)) as ConflictError;
      expect(conflict).toBeInstanceOf(ConflictError);
      expect(conflict.details.current).toBe(9);
      behaviour.set(first, () => ({ ok: false, error: { code: "too_large", message: "too large", details: { field: "value", limit: "valueBytesMax", max: 1, size: 2 } } }));
      await expect(c.group(group).put("k", "v")).rejects.toMatchObject({ code: "too_large" });
      behaviour.set(first, () => ({ ok: false, error: { code: "internal", message: "boom" } }));
      await expect(c.group(group).get("k")).rejects.toMatchObject({ code: "internal", message: "boom" });
      behaviour.set(first, () => ({ ok: false, error: { code: "brand_new_code", message: "from the future" } }) as unknown as ApiResponse);
      await expect(c.group(group).get("k")).rejects.toMatchObject({ code: "internal", details: { wireCode: "brand_new_code" } });
      expect(seen.map((s) => s.node)).toEqual([first, first, first, first, first]);
    } finally {
      await c.close();
    }
  });

  it("follows not_replica to the replica it names", async () => {
    await nodes("n1", "n2", "n3");
    behaviour.set(first, () => errorResponse(new NotReplicaError(group, [third])));
    behaviour.set(third, () => put);
    const c = await client();
    try {
      await c.group(group).put("k", "v");
      expect(seen.map((s) => s.node)).toEqual([first, third]);
    } finally {
      await c.close();
    }
  });

  it("without members: learns them from a status at connect; if nobody answers, uses the queue subject and learns later", async () => {
    await nodes("queue");
    behaviour.set("queue", (body) => (body.op === "status" ? status("n1") : put));
    const learned = await client(1_000, "learn");
    try {
      expect(learned.members).toEqual(MEMBERS);
    } finally {
      await learned.close();
    }
    for (const s of subs) s.unsubscribe();
    subs = [];
    seen = [];
    await server.flush();
    const blind = await client(1_000, "learn");
    try {
      expect(blind.members).toBeNull();
      await nodes("queue");
      await blind.group(group).put("k", "v");
      expect(seen.map((s) => [s.node, s.body.op])).toEqual([["queue", "put"]]);
      // A failure makes the client ask for the members again.
      behaviour.set("queue", (body) => (body.op === "status" ? status("n2") : undefined));
      await nodes(first);
      behaviour.set(first, () => put);
      await blind.group(group).put("k", "v", { timeoutMs: 1_000 });
      expect(blind.members).toEqual(MEMBERS);
    } finally {
      await blind.close();
    }
  });

  it("a malformed answer is an InternalError, not retried", async () => {
    await nodes("n1", "n2", "n3");
    const c = await client();
    try {
      behaviour.set(first, () => ({ ok: true, nonsense: 1 }) as unknown as ApiResponse);
      await expect(c.group(group).put("k", "v")).rejects.toMatchObject({ code: "internal", message: expect.stringContaining("malformed answer") });
      expect(seen).toHaveLength(1);
    } finally {
      await c.close();
    }
  });
});

// The client as an nact actor, for code that is itself built of actors:
//
//   const store = spawnClientActor(system, { cluster: "dev" });
//   dispatch(store, { op: "put", key: "greeting", value: "hello", replyTo: ctx.self, tag: 1 });
//   // ctx.self later receives { tag: 1, op: "put", ok: true, result: { version } }
//
// Every request names its `replyTo` and a `tag` of the caller's choice; the answer comes back
// as a message to `replyTo`, carrying the tag. This is plain message passing on purpose: nact's
// `query` makes temporary actors with Math.random() ids that collide under load (crossed and
// lost replies), so it is used nowhere here.
//
// The actor does not await a call before taking the next message: calls run concurrently
// (one NATS connection, many requests in flight), and replies arrive in completion order,
// which is what the tag is for.

import { dispatch, spawn, type Ref } from "nact";
import type { ApiOp, ApiValue, CasResult, CompareRequest, Consistency, DeleteResult, PutResult, StatusResult, TxnResult, TxnWriteRequest } from "../protocol/api.js";
import { BadRequestError, PaxosStoreError, InternalError } from "../protocol/errors.js";
import { connect, type ConnectOptions, type PaxosStoreClient } from "./client.js";
import type { GetResponse, ScanPage } from "./results.js";

/** What each op answers with. */
export interface ClientResultByOp {
  readonly get: GetResponse;
  readonly put: PutResult;
  readonly delete: DeleteResult;
  readonly cas: CasResult;
  readonly txn: TxnResult;
  readonly scan: ScanPage;
  readonly status: StatusResult;
}

/** The message `replyTo` receives: the request's `tag` and `op`, and a result or a typed error. */
export type ClientReply<Tag = unknown> =
  | { [O in ApiOp]: { readonly tag: Tag; readonly op: O; readonly ok: true; readonly result: ClientResultByOp[O] } }[ApiOp]
  | { readonly tag: Tag; readonly op: ApiOp; readonly ok: false; readonly error: PaxosStoreError };

interface Envelope<Tag> {
  /** Where the reply goes. */
  readonly replyTo: Ref<ClientReply<Tag>>;
  /** Comes back in the reply, to match it with its request. */
  readonly tag: Tag;
  /** This call's deadline; default the client's. */
  readonly timeoutMs?: number;
}

/** A request to the client actor. Single-key ops without `group` use the key as its group. */
export type ClientRequest<Tag = unknown> = Envelope<Tag> &
  (
    | { readonly op: "get"; readonly group?: string; readonly key: string; readonly consistency?: Consistency }
    | { readonly op: "put"; readonly group?: string; readonly key: string; readonly value: ApiValue; readonly requestId?: string }
    | { readonly op: "delete"; readonly group?: string; readonly key: string; readonly requestId?: string }
    | { readonly op: "cas"; readonly group?: string; readonly key: string; readonly version: number; readonly value: ApiValue; readonly requestId?: string }
    | {
        readonly op: "txn";
        readonly group: string;
        readonly compares?: readonly CompareRequest[];
        readonly success?: readonly TxnWriteRequest[];
        readonly failure?: readonly TxnWriteRequest[];
        readonly requestId?: string;
      }
    | {
        readonly op: "scan";
        readonly group: string;
        readonly prefix?: string;
        readonly after?: string;
        readonly limit?: number;
        readonly consistency?: Consistency;
      }
    | { readonly op: "status"; readonly node?: string }
  );

export interface ClientActorOptions extends ConnectOptions {
  /** Use this client (shared; not closed when the actor stops) instead of connecting one. */
  readonly client?: PaxosStoreClient;
  /** The actor's name under its parent. */
  readonly name?: string;
}

interface ClientActorState {
  /** The connection, or its connecting; null after a failed connect (the next message tries again). */
  client: Promise<PaxosStoreClient> | null;
  readonly owned: boolean;
  readonly options: ConnectOptions;
}

/**
 * Spawns the client actor under `parent` and returns its ref. It connects in the background
 * (messages sent meanwhile wait for the connection); stopping it (nact's `stop`) closes the
 * connection it opened.
 */
export function spawnClientActor<Tag = unknown>(parent: Ref<any>, options: ClientActorOptions = {}): Ref<ClientRequest<Tag>> {
  const { client, name, ...connectOptions } = options;
  const state: ClientActorState = {
    client: client === undefined ? null : Promise.resolve(client),
    owned: client === undefined,
    options: connectOptions,
  };
  const actor = (s: ClientActorState, msg: ClientRequest<Tag>): ClientActorState => {
    void serve(s, msg);
    return s;
  };
  return spawn(parent, actor, name, {
    initialState: state,
    afterStop: async (s: ClientActorState) => {
      if (!s.owned || s.client === null) return;
      const c = await s.client.catch(() => null);
      await c?.close();
    },
  }) as Ref<ClientRequest<Tag>>;
}

async function serve<Tag>(state: ClientActorState, msg: ClientRequest<Tag>): Promise<void> {
  // Without a replyTo there is nobody to answer: drop it (a message is never a crash).
  if (typeof msg !== "object" || msg === null || !("replyTo" in msg) || msg.replyTo === undefined || msg.replyTo === null) return;
  const { replyTo, tag } = msg;
  const op = (typeof msg.op === "string" ? msg.op : "status") as ApiOp;
  let reply: ClientReply<Tag>;
  try {
    if (state.client === null) state.client = connect(state.options);
    const pending = state.client;
    const client = await pending.catch((e: unknown) => {
      if (state.client === pending) state.client = null; // try again on the next message
      throw e;
    });
    reply = { tag, op, ok: true, result: await perform(client, msg) } as ClientReply<Tag>;
  } catch (e) {
    const error = e instanceof PaxosStoreError ? e : new InternalError(`client actor: ${e instanceof Error ? e.message : String(e)}`);
    reply = { tag, op, ok: false, error };
  }
  dispatch(replyTo, reply);
}

function perform(client: PaxosStoreClient, msg: ClientRequest<unknown>): Promise<ClientResultByOp[ApiOp]> {
  const call = { timeoutMs: msg.timeoutMs };
  switch (msg.op) {
    case "get":
      return client.getIn(msg.group, msg.key, { ...call, consistency: msg.consistency });
    case "put":
      return client.putIn(msg.group, msg.key, msg.value, { ...call, requestId: msg.requestId });
    case "delete":
      return client.deleteIn(msg.group, msg.key, { ...call, requestId: msg.requestId });
    case "cas":
      return client.casIn(msg.group, msg.key, msg.version, msg.value, { ...call, requestId: msg.requestId });
    case "txn":
      return client.txnIn(msg.group, { compares: msg.compares, success: msg.success, failure: msg.failure }, { ...call, requestId: msg.requestId });
    case "scan":
      return client.scanIn(msg.group, { ...call, prefix: msg.prefix, after: msg.after, limit: msg.limit, consistency: msg.consistency });
    case "status":
      return client.status(msg.node, call);
    default:
      return Promise.reject(new BadRequestError("op", `unknown op ${JSON.stringify((msg as { op?: unknown }).op)}; expected get, put, delete, cas, txn, scan or status`));
  }
}

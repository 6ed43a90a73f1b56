// fast-check generators of well-formed peer messages (every variant of messages.ts), shared by
// the peer codec tests.

import fc from "fast-check";

import type { Ballot } from "../../src/protocol/ballot.js";
import type { AcceptedValue, ChosenEntry, PeerMessage, RequestRecord } from "../../src/protocol/messages.js";
import type { Command, Compare, Entry, TxnWrite, Value, WriteOp, WriteResult } from "../../src/protocol/ops.js";

export const nodeId = fc.stringMatching(/^[A-Za-z0-9_-]{1,12}$/);
export const clusterName = fc.stringMatching(/^[A-Za-z0-9_-]{1,12}$/);
/** Any well-formed Unicode, astral planes included. */
export const key = fc.string({ unit: "binary", minLength: 1, maxLength: 24 });
export const group = key;
const optionalKey = fc.option(fc.string({ unit: "binary", maxLength: 24 }), { nil: null });
const nat = fc.maxSafeNat();
const smallNat = fc.nat({ max: 1_000_000 });
const bytes = fc.uint8Array({ maxLength: 64 });

export const ballot: fc.Arbitrary<Ballot> = fc.record({ round: fc.oneof(fc.constant(0), smallNat, nat), node: nodeId });

const put = fc.record({ op: fc.constant("put" as const), key, value: bytes });
const del = fc.record({ op: fc.constant("delete" as const), key });
const txnWrite: fc.Arbitrary<TxnWrite> = fc.oneof(put, del);

const compare: fc.Arbitrary<Compare> = fc.oneof(
  fc.record({ key, target: fc.constant("version" as const), cmp: fc.constantFrom("=" as const, "!=" as const, "<" as const, ">" as const), version: nat }),
  fc.record({ key, target: fc.constant("value" as const), cmp: fc.constantFrom("=" as const, "!=" as const), value: bytes }),
  fc.record({ key, target: fc.constant("exists" as const), exists: fc.boolean() }),
);

export const writeOp: fc.Arbitrary<WriteOp> = fc.oneof(
  put,
  del,
  fc.record({ op: fc.constant("cas" as const), key, version: nat, value: bytes }),
  fc.record({
    op: fc.constant("txn" as const),
    compares: fc.array(compare, { maxLength: 4 }),
    success: fc.array(txnWrite, { maxLength: 4 }),
    failure: fc.array(txnWrite, { maxLength: 3 }),
  }),
);

const requestId = fc.string({ unit: "binary", minLength: 1, maxLength: 32 });
const command: fc.Arbitrary<Command> = fc.record({ requestId, op: writeOp });
const valueId = fc.string({ minLength: 1, maxLength: 40 });
export const value: fc.Arbitrary<Value> = fc.record({ id: valueId, commands: fc.array(command, { maxLength: 4 }) });
const chosenEntry: fc.Arbitrary<ChosenEntry> = fc.record({ index: nat, ballot, value });
const acceptedValue: fc.Arbitrary<AcceptedValue> = fc.record({ ballot, value });
const entry: fc.Arbitrary<Entry> = fc.record({ value: bytes, version: nat });

const simpleResult: fc.Arbitrary<WriteResult> = fc.oneof(
  fc.record({ type: fc.constant("put" as const), version: nat }),
  fc.record({ type: fc.constant("delete" as const), version: nat, existed: fc.boolean() }),
  fc.record({ type: fc.constant("cas" as const), ok: fc.constant(true as const), version: nat }),
  fc.record({ type: fc.constant("cas" as const), ok: fc.constant(false as const), current: nat }),
);
const writeResult: fc.Arbitrary<WriteResult> = fc.oneof(
  simpleResult,
  fc.record({
    type: fc.constant("txn" as const),
    succeeded: fc.boolean(),
    version: nat,
    currentVersions: fc.array(nat, { maxLength: 4 }),
    results: fc.array(simpleResult, { maxLength: 4 }),
  }),
);
const requestRecord: fc.Arbitrary<RequestRecord> = fc.record({ requestId, seq: nat, index: nat, result: writeResult });

export const peerMessage: fc.Arbitrary<PeerMessage> = fc.oneof(
  fc.record({ type: fc.constant("prepare" as const), group, index: nat, ballot, prev: fc.option(chosenEntry, { nil: null }) }),
  fc.record({ type: fc.constant("promise" as const), group, index: nat, ballot, accepted: fc.option(acceptedValue, { nil: null }) }),
  fc.record({ type: fc.constant("accept" as const), group, index: nat, ballot, value, prev: fc.option(chosenEntry, { nil: null }) }),
  fc.record({ type: fc.constant("accepted" as const), group, index: nat, ballot }),
  fc.record({ type: fc.constant("reject" as const), group, index: nat, ballot, promised: fc.option(ballot, { nil: null }), chosen: nat }),
  fc
    .record({ type: fc.constant("chosen" as const), group, index: nat, ballot, value: fc.option(value, { nil: null }), otherId: valueId })
    .map(({ otherId, ...m }) => ({ ...m, valueId: m.value === null ? otherId : m.value.id })),
  fc.record({ type: fc.constant("catchupRequest" as const), group, chosen: nat, snapshotAt: fc.option(nat, { nil: null }), after: optionalKey }),
  fc.record({ type: fc.constant("catchupEntry" as const), group, entry: chosenEntry }),
  fc.record({
    type: fc.constant("catchupSnapshot" as const),
    group,
    at: chosenEntry,
    after: optionalKey,
    items: fc.array(fc.tuple(key, entry), { maxLength: 4 }),
    requests: fc.array(requestRecord, { maxLength: 3 }),
    next: optionalKey,
  }),
  fc.record({ type: fc.constant("readProbe" as const), group, probe: nat }),
  fc.record({ type: fc.constant("readProbeReply" as const), group, probe: nat, chosen: nat, accepted: fc.boolean() }),
);

export const peerFrame = fc.record({ from: nodeId, cluster: clusterName, messages: fc.array(peerMessage, { maxLength: 8 }) });

// The public API of the PaxosStore client (the package's main export).

export {
  connect,
  PaxosStoreClient,
  KeyGroup,
  DEFAULT_SERVERS,
  DEFAULT_TIMEOUT_MS,
  TIMEOUT_HEADER,
  type ConnectOptions,
  type ClientStats,
  type TlsOptions,
  type CallOptions,
  type ReadOptions,
  type WriteOptions,
  type ScanOptions,
  type TxnSpec,
} from "./client.js";
export { textOf, type Entry, type Found, type NotFound, type GetResponse, type ScanPage } from "./results.js";
export { spawnClientActor, type ClientActorOptions, type ClientRequest, type ClientReply, type ClientResultByOp } from "./actor.js";

// The wire types and typed errors the client's results and failures are made of.
export type {
  ApiValue,
  CasResult,
  CompareRequest,
  Consistency,
  DeleteResult,
  PutResult,
  StatusResult,
  TxnResult,
  TxnWriteRequest,
  TxnWriteResult,
} from "../protocol/api.js";
export type { Encoding } from "../protocol/codec.js";
export {
  PaxosStoreError,
  BadRequestError,
  TooLargeError,
  ConflictError,
  UnavailableError,
  TimeoutError,
  NotReplicaError,
  InternalError,
  UnauthorizedError,
  ERROR_CODES,
  type WireErrorCode,
} from "../protocol/errors.js";
export type { WireLimits } from "../protocol/limits.js";
export { replicasFor, preferredReplica } from "../protocol/placement.js";

// PaxosStore for testcontainers: a real cluster (nats-server + N nodes, each in its own
// container, on one Docker network) for your integration tests, like `@testcontainers/nats`.
//
//   import { PaxosStoreCluster } from "paxosstore/testcontainers";
//   const cluster = await new PaxosStoreCluster().start();   // 3 nodes
//   const store = await cluster.client();
//   await cluster.addNode();                                 // n4, started to join
//   await cluster.members("add", "n4");                      // a member once stable
//   ...
//   await cluster.stop();
//
// Needs the `testcontainers` package (^11.14) and a Docker engine. See docs/TESTCONTAINERS.md.

export {
  PaxosStoreCluster,
  StartedPaxosStoreCluster,
  DEFAULT_NODE_IMAGE,
  DEFAULT_NATS_IMAGE,
  DEFAULT_CLUSTER_NAME,
  DEFAULT_STARTUP_TIMEOUT_MS,
  DEFAULT_MEMBERS_TIMEOUT_MS,
  type PaxosStoreClusterOptions,
  type PaxosStoreConnectionOptions,
  type MembersAction,
  type MembersChangeOptions,
  type MembersAdminResult,
} from "./cluster.js";
export { PaxosStoreNode, DATA_DIR, type NodeState, type NodeStopOptions } from "./node.js";
export { NATS_CLIENT_PORT, NATS_MONITOR_PORT } from "./natsConfig.js";

// The Paxos core of one key-group replica, as a pure state machine:
//   step(state, now, input) -> Ready { persist, send, answers, wakeAt }
// No I/O, no timers, no clock, no Math.random: time comes in as `now`, randomness from a
// PRNG seeded by the config. The caller (a key-group actor, or the simulation) does the I/O.
//
// `step` updates `state` in place (it is the caller's, and copying a group's data on every
// message would dominate the cost) and returns what the caller must do.

import type { GroupConfig } from "./config.js";
import type { DurableGroup } from "./durable.js";
import type { Input, Ready } from "./io.js";
import type { GroupState } from "./state.js";

export declare function restoreReplica(config: GroupConfig, durable: DurableGroup): GroupState;
export declare function step(state: GroupState, now: number, input: Input): Ready;

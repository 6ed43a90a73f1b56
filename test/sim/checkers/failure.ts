// How a checker objects: it throws a CheckFailure naming itself, and the seed stops there.
// The runner prints the checker's name and message with the seed and a replay command.

export type CheckerName =
  | "agreement"
  | "durability"
  | "convergence"
  | "durable-mirror"
  | "persist-before-send"
  | "fast-round"
  | "linearizability"
  | "liveness"
  /** Membership changes (issue 13): every group ends on exactly its configuration's replicas. */
  | "placement"
  | "core-exception";

export class CheckFailure extends Error {
  constructor(
    readonly checker: CheckerName,
    /** What was wrong, without the checker's name. */
    readonly detail: string,
  ) {
    super(`${checker}: ${detail}`);
    this.name = "CheckFailure";
  }
}

export function fail(checker: CheckerName, message: string): never {
  throw new CheckFailure(checker, message);
}

// NATS refuses an unpermitted publish or subscribe with an asynchronous -ERR on the connection
// (the connection stays open); a request whose reply inbox may not be subscribed to would
// simply wait for its timeout, and the caller would retry as if the cluster were down. This
// watches the connection's errors so that a call fails at once with `unauthorized` instead:
// a refused inbox subscription fails every later request (it is sticky), a refused publish
// fails requests to that subject.

import { errors as natsErrors, type NatsConnection, type Status } from "@nats-io/transport-node";

type PermissionViolationError = InstanceType<typeof natsErrors.PermissionViolationError>;

export class Refusals {
  private inbox: PermissionViolationError | null = null;
  private readonly publish = new Map<string, PermissionViolationError>();
  private readonly waiters = new Set<() => void>();

  constructor(nc: NatsConnection) {
    void (async () => {
      for await (const s of nc.status() as AsyncIterable<Status>) {
        if (s.type !== "error" || !(s.error instanceof natsErrors.PermissionViolationError)) continue;
        if (s.error.operation === "subscription") this.inbox ??= s.error;
        else this.publish.set(s.error.subject, s.error);
        for (const wake of this.waiters) wake();
      }
    })().catch(() => undefined);
  }

  /** The refusal that dooms a request to `subject`, if one was seen. */
  refusalFor(subject: string): PermissionViolationError | null {
    return this.inbox ?? this.publish.get(subject) ?? null;
  }

  /**
   * `request()`, or a rejection with the refusal as soon as one dooms it; a request already
   * known to be doomed is not sent at all.
   */
  race<T>(subject: string, request: () => Promise<T>): Promise<T> {
    const known = this.refusalFor(subject);
    if (known !== null) return Promise.reject(known);
    let wake!: () => void;
    const refused = new Promise<never>((_, reject) => {
      wake = () => {
        const r = this.refusalFor(subject);
        if (r !== null) reject(r);
      };
      this.waiters.add(wake);
    });
    return Promise.race([request(), refused]).finally(() => this.waiters.delete(wake));
  }
}

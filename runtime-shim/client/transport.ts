import type { CallStatus } from '../protocol';
import type { RemoteError, Settled } from './errors';

export interface CallOptions {
  /** Deadline of this call in milliseconds. */
  readonly timeoutMs?: number;
}

export interface SpawnedStatus {
  readonly status: CallStatus;
  readonly output?: unknown;
  readonly error?: RemoteError;
}

/** How a client reaches one deployed function. One implementation per way of calling. */
export interface Transport {
  call(input: unknown, options?: CallOptions): Promise<unknown>;
  /** Starts a call without waiting; resolves with an id `status` understands. */
  spawn(input: unknown, options?: CallOptions): Promise<string>;
  status(id: string): Promise<SpawnedStatus>;
  /**
   * Runs the function once per input as one unit of work where the platform has one (an AWS Batch array
   * job); outcomes in input order, never rejecting. Without it, `map` makes one `call` per input.
   */
  mapMany?(inputs: readonly unknown[], options?: CallOptions): Promise<Array<Settled<unknown>>>;
}

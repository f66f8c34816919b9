import type { ErrorType, WireError } from '../protocol';

/** A call that failed on the remote side (or could not reach it). Check with `isRemoteError`. */
export class RemoteError extends Error {
  override readonly name = 'RemoteError';
  readonly type: ErrorType | 'Unreachable';
  /** The function called. */
  readonly functionName: string;
  /** For ValidationError: where in the input, e.g. `/texts/3`. */
  readonly path?: string;
  /** For HandlerError: the stack the handler's process printed. */
  readonly remoteStack?: string;
  /** For HandlerError: the thrown error's name on the remote side. */
  readonly remoteName?: string;
  /** HTTP status, when there was one. */
  readonly status?: number;

  constructor(functionName: string, error: WireError | { type: 'Unreachable'; message: string }, status?: number) {
    super(`${functionName}: ${error.message}`);
    this.functionName = functionName;
    this.type = error.type;
    this.status = status;
    if ('path' in error) this.path = error.path;
    if ('stack' in error) this.remoteStack = error.stack;
    if ('name' in error) this.remoteName = error.name;
  }
}

export function isRemoteError(error: unknown): error is RemoteError {
  return error instanceof RemoteError || (error instanceof Error && error.name === 'RemoteError' && 'functionName' in error);
}

/** One item of `mapSettled`, or of a `MapError`'s results: its output or its error, in input order. */
export type Settled<O> = { readonly ok: true; readonly value: O } | { readonly ok: false; readonly error: RemoteError };

/** Thrown by `map` when any item failed; `results` keeps every item's outcome in input order. */
export class MapError<O> extends Error {
  override readonly name = 'MapError';
  constructor(
    readonly functionName: string,
    readonly results: ReadonlyArray<Settled<O>>,
  ) {
    const failed = results.filter((r) => !r.ok) as Array<{ ok: false; error: RemoteError }>;
    super(`${functionName}.map: ${failed.length} of ${results.length} calls failed; first: ${failed[0]?.error.message}`);
  }

  /** Outputs of the items that succeeded, with their input index. */
  get succeeded(): Array<{ index: number; value: O }> {
    return this.results.flatMap((r, index) => (r.ok ? [{ index, value: r.value }] : []));
  }

  /** Errors of the items that failed, with their input index. */
  get failed(): Array<{ index: number; error: RemoteError }> {
    return this.results.flatMap((r, index) => (r.ok ? [] : [{ index, error: r.error }]));
  }
}

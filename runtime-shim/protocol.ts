/**
 * The serverless-gpu wire protocol, version 1.
 *
 * One function is served per container. Callers speak JSON over HTTP; every body is an envelope
 * `{ "v": 1, "kind": ..., ... }` and messages are told apart by `kind`:
 *
 *   POST /v1/call          { v, kind: "call",  input, timeoutMs? }   -> { v, kind: "result", output }
 *   POST /v1/spawn         { v, kind: "call",  input, timeoutMs? }   -> { v, kind: "spawned", id }
 *   GET  /v1/calls/:id                                                -> { v, kind: "status", id, status, output?, error? }
 *   GET  /healthz                                                     -> 200 once setup has finished, 503 before
 *
 * Any failure answers `{ v, kind: "error", error: { type, message, path?, stack? } }` with the HTTP status
 * given by STATUS_OF below, so a plain HTTP client and a load balancer see the right class of failure.
 *
 * An input or output too large for a request body travels through the function's payload store (see
 * payload-store.ts): the request then carries `inputRef` (the URL of the encoded input) instead of
 * `input`, and the result `outputRef` instead of `output`.
 *
 * Values are JSON, except binary data: a Uint8Array or a Float32Array (or another typed array listed in
 * TYPED_ARRAYS) travels as `{ "$typed": "Float32Array", "base64": "..." }` and is rebuilt on the other side,
 * so handlers and callers see the same typed arrays they sent.
 */

export const PROTOCOL_VERSION = 1;

export const PATHS = {
  call: '/v1/call',
  spawn: '/v1/spawn',
  calls: '/v1/calls/',
  health: '/healthz',
} as const;

/** Why a call failed, as the caller sees it. */
export type ErrorType =
  | 'ValidationError' // the input does not match the function's input type
  | 'HandlerError' // the handler threw
  | 'Timeout' // the call ran past its deadline
  | 'Overloaded' // the container's concurrency limit and queue are full
  | 'ShuttingDown' // the container is draining after SIGTERM
  | 'NotReady' // setup has not finished (or failed)
  | 'NotFound' // no such call id / path
  | 'BadRequest'; // the envelope itself is malformed

export const STATUS_OF: Record<ErrorType, number> = {
  ValidationError: 400,
  BadRequest: 400,
  NotFound: 404,
  HandlerError: 500,
  Overloaded: 429,
  ShuttingDown: 503,
  NotReady: 503,
  Timeout: 504,
};

export interface WireError {
  readonly type: ErrorType;
  readonly message: string;
  /** For ValidationError: where in the input, e.g. `/texts/3`. */
  readonly path?: string;
  /** For HandlerError: the stack as the handler's process printed it. */
  readonly stack?: string;
  /** For HandlerError: the thrown error's name, e.g. `RangeError`. */
  readonly name?: string;
}

export interface CallRequest {
  readonly v: typeof PROTOCOL_VERSION;
  readonly kind: 'call';
  readonly input?: unknown;
  /** Instead of `input`: where the encoded input was written. */
  readonly inputRef?: string;
  readonly timeoutMs?: number;
}

export type CallStatus = 'running' | 'succeeded' | 'failed';

export type Reply =
  | { readonly v: number; readonly kind: 'result'; readonly output?: unknown; readonly outputRef?: string }
  | { readonly v: number; readonly kind: 'spawned'; readonly id: string }
  | {
      readonly v: number;
      readonly kind: 'status';
      readonly id: string;
      readonly status: CallStatus;
      readonly output?: unknown;
      readonly error?: WireError;
    }
  | { readonly v: number; readonly kind: 'error'; readonly error: WireError };

const TYPED_ARRAYS = {
  Uint8Array,
  Int8Array,
  Uint16Array,
  Int16Array,
  Uint32Array,
  Int32Array,
  Float32Array,
  Float64Array,
} as const;

export type TypedArrayName = keyof typeof TYPED_ARRAYS;

export function isTypedArrayName(name: string): name is TypedArrayName {
  return Object.prototype.hasOwnProperty.call(TYPED_ARRAYS, name);
}

function typedArrayName(value: unknown): TypedArrayName | undefined {
  if (!ArrayBuffer.isView(value) || value instanceof DataView) return undefined;
  const name = value.constructor.name;
  if (name === 'Buffer') return 'Uint8Array';
  return isTypedArrayName(name) ? name : undefined;
}

/** Turns a value into plain JSON, tagging typed arrays. */
export function encodeValue(value: unknown): unknown {
  if (value === null || typeof value !== 'object') return value;
  const typed = typedArrayName(value);
  if (typed) {
    const view = value as ArrayBufferView;
    const bytes = Buffer.from(view.buffer, view.byteOffset, view.byteLength);
    return { $typed: typed, base64: bytes.toString('base64') };
  }
  if (Array.isArray(value)) return value.map(encodeValue);
  if (value instanceof Date) return value.toISOString();
  const out: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) {
    if (item !== undefined) out[key] = encodeValue(item);
  }
  return out;
}

/** Rebuilds typed arrays in a value parsed from JSON. */
export function decodeValue(value: unknown): unknown {
  if (value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map(decodeValue);
  const record = value as Record<string, unknown>;
  const tag = record.$typed;
  if (typeof tag === 'string' && typeof record.base64 === 'string' && isTypedArrayName(tag)) {
    const bytes = Buffer.from(record.base64, 'base64');
    const Ctor = TYPED_ARRAYS[tag];
    // Copy into a fresh, aligned buffer: Buffer pools are not aligned for 4- and 8-byte elements.
    const aligned = new ArrayBuffer(bytes.byteLength);
    new Uint8Array(aligned).set(bytes);
    return new Ctor(aligned);
  }
  const out: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(record)) out[key] = decodeValue(item);
  return out;
}

/** True when a value holds a typed array anywhere (so the fast JSON path cannot be used). */
export function containsTypedArray(value: unknown): boolean {
  if (value === null || typeof value !== 'object') return false;
  if (ArrayBuffer.isView(value)) return true;
  if (Array.isArray(value)) return value.some(containsTypedArray);
  for (const key in value as Record<string, unknown>) {
    if (containsTypedArray((value as Record<string, unknown>)[key])) return true;
  }
  return false;
}

/** True when a parsed JSON value holds a `$typed` tag anywhere. */
export function containsTypedTag(value: unknown): boolean {
  if (value === null || typeof value !== 'object') return false;
  if (Array.isArray(value)) return value.some(containsTypedTag);
  const record = value as Record<string, unknown>;
  if (typeof record.$typed === 'string') return true;
  for (const key in record) if (containsTypedTag(record[key])) return true;
  return false;
}

export function encodeInput(value: unknown): unknown {
  return containsTypedArray(value) ? encodeValue(value) : value;
}

export function decodeOutput(value: unknown): unknown {
  return containsTypedTag(value) ? decodeValue(value) : value;
}

/**
 * The HTTP transport: speaks the shim's protocol to one or more endpoints (round robin), retrying with
 * backoff and jitter while the remote side refuses before running anything (starting, draining, full).
 */
import { PATHS, PROTOCOL_VERSION, decodeOutput, encodeInput, type CallStatus, type Reply, type WireError } from '../protocol';
import { RemoteError } from './errors';
import { randomUUID } from 'node:crypto';
import { DEFAULT_INLINE_LIMIT_BYTES, deletePayload, payloadUrl, readPayload, writePayload } from '../payload-store';
import type { CallOptions, SpawnedStatus, Transport } from './transport';

/** Adds headers (e.g. an ID token) to each request. */
export type HeaderSource = (url: string) => Promise<Record<string, string>> | Record<string, string>;

export interface HttpTransportOptions {
  readonly functionName: string;
  readonly endpoints: readonly string[];
  readonly headers?: HeaderSource;
  /** Deadline of one call when the caller sets none; default 10 minutes. */
  readonly timeoutMs?: number;
  /** Longest single backoff between retries; default 2 s. */
  readonly maxBackoffMs?: number;
  /** Where inputs and outputs too large for a request body go (a payload-store URL base). */
  readonly payloadStore?: string;
  /** Encoded requests larger than this go through the payload store; default 8 MiB. */
  readonly inlineLimitBytes?: number;
}

const RETRYABLE = new Set(['NotReady', 'ShuttingDown', 'Overloaded', 'Unreachable']);

export function backoffDelay(attempt: number, maxMs: number): number {
  const ceiling = Math.min(maxMs, 50 * 2 ** attempt);
  return ceiling / 2 + Math.random() * (ceiling / 2);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export class HttpTransport implements Transport {
  private next = 0;
  private readonly timeoutMs: number;
  private readonly maxBackoffMs: number;

  constructor(private readonly options: HttpTransportOptions) {
    if (options.endpoints.length === 0) {
      throw new RemoteError(options.functionName, {
        type: 'Unreachable',
        message: 'no endpoint is known: deploy the service, or pass { endpoint } to the client',
      });
    }
    this.timeoutMs = options.timeoutMs ?? 10 * 60_000;
    this.maxBackoffMs = options.maxBackoffMs ?? 2_000;
  }

  async call(input: unknown, options: CallOptions = {}): Promise<unknown> {
    const reply = await this.send(PATHS.call, input, options);
    if (reply.kind !== 'result') throw this.unexpected(reply);
    if (reply.outputRef === undefined) return decodeOutput(reply.output);
    // A large output waits in the payload store.
    const output = JSON.parse(await readPayload(reply.outputRef)) as unknown;
    void deletePayload(reply.outputRef);
    return decodeOutput(output);
  }

  async spawn(input: unknown, options: CallOptions = {}): Promise<string> {
    const { reply, endpoint } = await this.sendTo(PATHS.spawn, input, options);
    if (reply.kind !== 'spawned') throw this.unexpected(reply);
    // The id says which container holds the call, so any copy of the client can poll it.
    return `${Buffer.from(endpoint).toString('base64url')}.${reply.id}`;
  }

  async status(id: string): Promise<SpawnedStatus> {
    const dot = id.indexOf('.');
    if (dot < 0) throw new RemoteError(this.options.functionName, { type: 'NotFound', message: `"${id}" is not a call id` });
    const endpoint = Buffer.from(id.slice(0, dot), 'base64url').toString('utf8');
    const response = await this.fetchJson(`${endpoint}${PATHS.calls}${encodeURIComponent(id.slice(dot + 1))}`, {
      method: 'GET',
      headers: await this.headersFor(endpoint),
      signal: AbortSignal.timeout(30_000),
    });
    const reply = response.reply;
    if (reply.kind === 'error') throw new RemoteError(this.options.functionName, reply.error, response.status);
    if (reply.kind !== 'status') throw this.unexpected(reply);
    return {
      status: reply.status as CallStatus,
      output: reply.status === 'succeeded' ? decodeOutput(reply.output) : undefined,
      error: reply.error ? new RemoteError(this.options.functionName, reply.error) : undefined,
    };
  }

  private async send(path: string, input: unknown, options: CallOptions): Promise<Reply> {
    return (await this.sendTo(path, input, options)).reply;
  }

  private async sendTo(path: string, input: unknown, options: CallOptions): Promise<{ reply: Reply; endpoint: string }> {
    const timeoutMs = options.timeoutMs ?? this.timeoutMs;
    const deadline = Date.now() + timeoutMs;
    let body = JSON.stringify({ v: PROTOCOL_VERSION, kind: 'call', input: encodeInput(input), timeoutMs });
    let inputRef: string | undefined;
    const store = this.options.payloadStore;
    if (store && body.length > (this.options.inlineLimitBytes ?? DEFAULT_INLINE_LIMIT_BYTES)) {
      // Too large for a request body: the input goes to the payload store and the request names it.
      inputRef = payloadUrl(store, `${randomUUID()}/input.json`);
      await writePayload(inputRef, JSON.stringify(encodeInput(input)));
      body = JSON.stringify({ v: PROTOCOL_VERSION, kind: 'call', inputRef, timeoutMs });
    }
    try {
      return await this.sendBody(path, body, deadline);
    } finally {
      if (inputRef) void deletePayload(inputRef);
    }
  }

  private async sendBody(path: string, body: string, deadline: number): Promise<{ reply: Reply; endpoint: string }> {
    for (let attempt = 0; ; attempt += 1) {
      const endpoint = this.options.endpoints[this.next++ % this.options.endpoints.length];
      let failure: RemoteError;
      try {
        const left = deadline - Date.now();
        const { reply, status } = await this.fetchJson(`${endpoint}${path}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...(await this.headersFor(endpoint)) },
          body,
          signal: AbortSignal.timeout(Math.max(1, left)),
        });
        if (reply.kind !== 'error') return { reply, endpoint };
        failure = new RemoteError(this.options.functionName, reply.error, status);
      } catch (error) {
        failure = error instanceof RemoteError ? error : this.unreachable(endpoint, error, deadline);
      }
      const pause = backoffDelay(attempt, this.maxBackoffMs);
      if (!RETRYABLE.has(failure.type) || Date.now() + pause >= deadline) throw failure;
      await sleep(pause);
    }
  }

  private async headersFor(endpoint: string): Promise<Record<string, string>> {
    return this.options.headers ? await this.options.headers(endpoint) : {};
  }

  private async fetchJson(url: string, init: RequestInit): Promise<{ reply: Reply; status: number }> {
    const response = await fetch(url, init);
    const text = await response.text();
    try {
      return { reply: JSON.parse(text) as Reply, status: response.status };
    } catch {
      const error: WireError = {
        type: response.status === 503 ? 'NotReady' : response.status === 429 ? 'Overloaded' : 'BadRequest',
        message: `HTTP ${response.status} from ${url}: ${text.slice(0, 200)}`,
      };
      throw new RemoteError(this.options.functionName, error, response.status);
    }
  }

  private unreachable(endpoint: string, error: unknown, deadline: number): RemoteError {
    const err = error as Error & { cause?: { code?: string } };
    if (err.name === 'TimeoutError' || Date.now() >= deadline) {
      return new RemoteError(this.options.functionName, { type: 'Timeout', message: `no answer from ${endpoint} before the deadline` });
    }
    const reason = err.cause?.code ?? err.message;
    return new RemoteError(this.options.functionName, { type: 'Unreachable', message: `cannot reach ${endpoint} (${reason})` });
  }

  private unexpected(reply: Reply): RemoteError {
    if (reply.kind === 'error') return new RemoteError(this.options.functionName, reply.error);
    return new RemoteError(this.options.functionName, { type: 'BadRequest', message: `unexpected reply "${reply.kind}"` });
  }
}

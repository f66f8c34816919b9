/**
 * The RPC server that hosts one function in a container (see protocol.ts for the wire format).
 *
 * Lifecycle: listen at once (health answers 503), run `setup` once, then report ready and serve. At most
 * `concurrency` calls run at a time; up to `queueLimit` more wait; beyond that a call is refused with
 * Overloaded (429) so a load balancer can send it elsewhere. Every call has a deadline. `drain()` refuses
 * new calls with ShuttingDown (503) and resolves once the calls already running have finished.
 */
import http from 'node:http';
import { randomUUID } from 'node:crypto';
import {
  PATHS,
  PROTOCOL_VERSION,
  STATUS_OF,
  containsTypedTag,
  decodeValue,
  encodeInput,
  type CallStatus,
  type ErrorType,
  type Reply,
  type WireError,
} from './protocol';
import type { Context, GpuFunction, SetupContext } from './types';
import { compileValidator, type Validator } from './validate';
import { DEFAULT_INLINE_LIMIT_BYTES, isUnder, payloadUrl, readPayload, writePayload } from './payload-store';

export interface ShimOptions {
  readonly functionName: string;
  readonly fn: GpuFunction<unknown, unknown>;
  /** JSON Schema of the input; when absent the input is not validated. */
  readonly inputSchema?: object;
  /** Calls served at once. */
  readonly concurrency: number;
  /** Calls that may wait for a slot; default 64 × concurrency. */
  readonly queueLimit?: number;
  /** Deadline of one call. */
  readonly timeoutMs: number;
  /** Where the weights are readable. */
  readonly weightsPath: string;
  /** Largest request body accepted, in bytes; default 32 MiB. */
  readonly maxBodyBytes?: number;
  /** Where large inputs are read from and large outputs written (a payload-store URL base). */
  readonly payloadStore?: string;
  /** Outputs whose JSON is larger go to the payload store (when there is one); default 8 MiB. */
  readonly inlineLimitBytes?: number;
  readonly log?: (line: string) => void;
}

export class CallFailure extends Error {
  constructor(readonly wire: WireError) {
    super(wire.message);
  }
}

interface SpawnedCall {
  status: CallStatus;
  output?: unknown;
  error?: WireError;
  finishedAt?: number;
}

/** How often deadlines are checked: a call times out at most this late. */
const DEADLINE_SWEEP_MS = 20;

/** A call in a handler: its context, and its deadline for the sweeper. */
class CallContext implements Context {
  readonly deadline: number;
  controller: AbortController | undefined = undefined;
  reject: ((error: unknown) => void) | undefined = undefined;

  constructor(
    readonly functionName: string,
    readonly callId: string,
    readonly weights: { readonly path: string },
    private readonly logLine: (line: string) => void,
    readonly timeoutMs: number,
  ) {
    this.deadline = Date.now() + timeoutMs;
  }

  /** Made on first use: most handlers never look, and an AbortController per call is not free. */
  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (Date.now() >= this.deadline) this.controller.abort(new Error('deadline passed'));
    }
    return this.controller.signal;
  }

  log(message: string): void {
    this.logLine(`${this.callId}: ${message}`);
  }

  expire(): void {
    this.controller?.abort(new Error('deadline passed'));
    this.reject?.(new CallFailure({ type: 'Timeout', message: `the call ran past its deadline of ${this.timeoutMs} ms` }));
  }
}

const SPAWN_RECORD_TTL_MS = 60 * 60 * 1000;
const SPAWN_RECORD_LIMIT = 10_000;

export class Shim {
  readonly server: http.Server;
  /** Resolves once setup has finished; rejects if it failed. */
  readonly ready: Promise<void>;
  private isReady = false;
  private setupError: Error | undefined;
  private draining = false;
  private running = 0;
  private readonly waiting: Array<() => void> = [];
  private readonly validate: Validator | undefined;
  private readonly instance: ReturnType<GpuFunction<unknown, unknown>['instantiate']>;
  private readonly spawned = new Map<string, SpawnedCall>();
  private readonly idle: Array<() => void> = [];
  /** Calls running a handler, with their deadlines; swept by one timer. */
  private readonly inHandler = new Set<CallContext>();
  private readonly weights: { readonly path: string };
  private sweeper: NodeJS.Timeout | undefined;
  private readonly log: (line: string) => void;

  constructor(private readonly options: ShimOptions) {
    this.log = options.log ?? ((line) => process.stderr.write(`[${options.functionName}] ${line}\n`));
    this.weights = { path: options.weightsPath };
    this.validate = options.inputSchema ? compileValidator(options.inputSchema) : undefined;
    this.instance = options.fn.instantiate();
    this.server = http.createServer((req, res) => {
      this.route(req, res).catch((error: unknown) => {
        this.log(`internal error: ${(error as Error).stack ?? String(error)}`);
        if (!res.headersSent) this.fail(res, { type: 'BadRequest', message: 'internal error in the shim' });
      });
    });
    this.server.keepAliveTimeout = 65_000;
    this.ready = this.runSetup();
    this.ready.catch(() => undefined);
  }

  /** Listens on the port (0 picks one) and resolves with the port bound. */
  listen(port: number, host: string): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        resolve((this.server.address() as { port: number }).port);
      });
    });
  }

  /** Calls running or waiting, including spawned ones. */
  get inFlight(): number {
    return this.running + this.waiting.length;
  }

  /**
   * Refuses new calls, lets running and queued calls finish (up to `graceMs`), then closes the server.
   * Resolves with the number of calls that were still running when the grace period ran out.
   */
  async drain(graceMs: number): Promise<number> {
    this.draining = true;
    const deadline = Date.now() + graceMs;
    // Fires once every connection has ended; replies sent while draining carry `connection: close`.
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeIdleConnections();
    if (this.inFlight > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, graceMs);
        timer.unref();
        this.idle.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    const abandoned = this.inFlight;
    for (const call of this.inHandler) call.controller?.abort(new Error('container shutting down'));
    // The last calls have finished but their replies are written after this point: let them reach the
    // caller (within the grace period) before cutting the remaining connections.
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, Math.max(0, deadline - Date.now()));
      timer.unref();
      closed.then(() => {
        clearTimeout(timer);
        resolve();
      });
    });
    this.server.closeAllConnections();
    return abandoned;
  }

  private async runSetup(): Promise<void> {
    const started = Date.now();
    const ctx: SetupContext = {
      functionName: this.options.functionName,
      weights: { path: this.options.weightsPath },
      log: (message) => this.log(`setup: ${message}`),
    };
    try {
      await this.instance.setup(ctx);
      this.isReady = true;
      this.log(`ready after setup in ${Date.now() - started} ms`);
    } catch (error) {
      this.setupError = error as Error;
      this.log(`setup failed: ${(error as Error).stack ?? String(error)}`);
      throw error;
    }
  }

  private async route(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = req.url ?? '/';
    if (req.method === 'GET' && url === PATHS.health) {
      const ok = this.isReady && !this.draining;
      res.writeHead(ok ? 200 : 503, { 'content-type': 'application/json', ...(this.draining ? { connection: 'close' } : {}) });
      res.end(JSON.stringify({ ready: ok, draining: this.draining, inFlight: this.inFlight }));
      return;
    }
    if (req.method === 'GET' && url.startsWith(PATHS.calls)) {
      this.reportSpawned(res, decodeURIComponent(url.slice(PATHS.calls.length)));
      return;
    }
    if (req.method !== 'POST' || (url !== PATHS.call && url !== PATHS.spawn)) {
      req.resume();
      this.fail(res, { type: 'NotFound', message: `no route ${req.method} ${url}` });
      return;
    }
    const body = await this.readBody(req, res);
    if (body === undefined) return;
    let input: unknown;
    let timeoutMs: number;
    try {
      ({ input, timeoutMs } = await this.parseCall(body));
    } catch (error) {
      this.fail(res, error instanceof CallFailure ? error.wire : { type: 'BadRequest', message: String(error) });
      return;
    }
    if (url === PATHS.spawn) {
      const id = randomUUID();
      this.spawned.set(id, { status: 'running' });
      this.pruneSpawned();
      this.send(res, 202, { v: PROTOCOL_VERSION, kind: 'spawned', id });
      this.execute(id, input, timeoutMs).then(
        (output) => this.spawned.set(id, { status: 'succeeded', output, finishedAt: Date.now() }),
        (error: unknown) => this.spawned.set(id, { status: 'failed', error: toWire(error), finishedAt: Date.now() }),
      );
      return;
    }
    const callId = randomUUID();
    try {
      const output = await this.execute(callId, input, timeoutMs);
      await this.sendResult(res, callId, output);
    } catch (error) {
      this.fail(res, toWire(error));
    }
  }

  /** Answers a result, through the payload store when it is too large for a response body. */
  private async sendResult(res: http.ServerResponse, callId: string, output: unknown): Promise<void> {
    const store = this.options.payloadStore;
    if (!store) {
      this.send(res, 200, { v: PROTOCOL_VERSION, kind: 'result', output });
      return;
    }
    const encoded = encodeInput(output);
    const body = JSON.stringify({ v: PROTOCOL_VERSION, kind: 'result', output: encoded });
    if (body.length <= (this.options.inlineLimitBytes ?? DEFAULT_INLINE_LIMIT_BYTES)) {
      this.sendBody(res, 200, body);
      return;
    }
    const outputRef = payloadUrl(store, `${callId}/output.json`);
    await writePayload(outputRef, JSON.stringify(encoded) ?? 'null');
    this.send(res, 200, { v: PROTOCOL_VERSION, kind: 'result', outputRef });
  }

  /** Checks the envelope, readiness and the input; returns the decoded input and the call's deadline. */
  private async parseCall(body: string): Promise<{ input: unknown; timeoutMs: number }> {
    if (this.draining) throw new CallFailure({ type: 'ShuttingDown', message: 'the container is shutting down' });
    if (!this.isReady) {
      throw new CallFailure({
        type: 'NotReady',
        message: this.setupError ? `setup failed: ${this.setupError.message}` : 'setup has not finished',
      });
    }
    let envelope: { v?: unknown; kind?: unknown; input?: unknown; inputRef?: unknown; timeoutMs?: unknown };
    try {
      envelope = JSON.parse(body) as typeof envelope;
    } catch {
      throw new CallFailure({ type: 'BadRequest', message: 'the request body is not JSON' });
    }
    if (typeof envelope !== 'object' || envelope === null || envelope.kind !== 'call') {
      throw new CallFailure({ type: 'BadRequest', message: 'the request must be { "v": 1, "kind": "call", "input": ... }' });
    }
    if (envelope.v !== PROTOCOL_VERSION) {
      throw new CallFailure({
        type: 'BadRequest',
        message: `protocol version ${String(envelope.v)} is not served here (this shim speaks ${PROTOCOL_VERSION})`,
      });
    }
    let raw = envelope.input;
    let text = body;
    if (typeof envelope.inputRef === 'string') {
      ({ raw, text } = await this.readInputRef(envelope.inputRef));
    }
    // Most inputs hold no typed array: a substring test spares walking them.
    const input = text.includes('"$typed"') && containsTypedTag(raw) ? decodeValue(raw) : raw;
    const failure = this.validate?.(input);
    if (failure) throw new CallFailure({ type: 'ValidationError', message: failure.message, path: failure.path });
    const requested = envelope.timeoutMs;
    const timeoutMs =
      typeof requested === 'number' && requested > 0 ? Math.min(this.options.timeoutMs, requested) : this.options.timeoutMs;
    return { input, timeoutMs };
  }

  /** A large input, from this function's payload store only. */
  private async readInputRef(inputRef: string): Promise<{ raw: unknown; text: string }> {
    const store = this.options.payloadStore;
    if (!store || !isUnder(inputRef, store)) {
      throw new CallFailure({ type: 'BadRequest', message: `inputRef ${inputRef} is not in this function's payload store${store ? ` (${store})` : ' (it has none)'}` });
    }
    try {
      const text = await readPayload(inputRef);
      return { raw: JSON.parse(text) as unknown, text };
    } catch (error) {
      throw new CallFailure({ type: 'BadRequest', message: `cannot read the input at ${inputRef}: ${(error as Error).message}` });
    }
  }

  private async execute(callId: string, input: unknown, timeoutMs: number): Promise<unknown> {
    const slot = this.acquire();
    if (slot) await slot;
    const call = new CallContext(this.options.functionName, callId, this.weights, this.log, timeoutMs);
    try {
      return await this.withDeadline(this.instance.invoke(input, call), call);
    } finally {
      this.inHandler.delete(call);
      this.release();
    }
  }

  /**
   * Settles with the work, or with a Timeout once the call's deadline passes. One sweeping timer serves
   * every call in flight (a timer, a race and a controller per call cost more than the call itself).
   */
  private withDeadline<T>(work: Promise<T>, call: CallContext): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      call.reject = reject;
      this.inHandler.add(call);
      if (!this.sweeper) {
        this.sweeper = setInterval(() => this.sweep(), DEADLINE_SWEEP_MS);
        this.sweeper.unref();
      }
      work.then(resolve, reject);
    });
  }

  private sweep(): void {
    const now = Date.now();
    for (const call of this.inHandler) {
      if (call.deadline <= now) {
        this.inHandler.delete(call);
        call.expire();
      }
    }
    if (this.inHandler.size === 0 && this.sweeper) {
      clearInterval(this.sweeper);
      this.sweeper = undefined;
    }
  }

  /** Takes a slot: at once (undefined) when one is free, else a promise that resolves when one frees. */
  private acquire(): Promise<void> | undefined {
    if (this.running < this.options.concurrency) {
      this.running += 1;
      return undefined;
    }
    const queueLimit = this.options.queueLimit ?? this.options.concurrency * 64;
    if (this.waiting.length >= queueLimit) {
      return Promise.reject(
        new CallFailure({
          type: 'Overloaded',
          message: `${this.options.concurrency} calls running and ${queueLimit} waiting: try again or add instances`,
        }),
      );
    }
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  private release(): void {
    const next = this.waiting.shift();
    if (next) {
      next(); // the slot passes straight to the next waiting call
      return;
    }
    this.running -= 1;
    if (this.running === 0) for (const resolve of this.idle.splice(0)) resolve();
  }

  private reportSpawned(res: http.ServerResponse, id: string): void {
    const call = this.spawned.get(id);
    if (!call) {
      this.fail(res, { type: 'NotFound', message: `no call ${id} on this container` });
      return;
    }
    this.send(res, 200, { v: PROTOCOL_VERSION, kind: 'status', id, status: call.status, output: call.output, error: call.error });
  }

  private pruneSpawned(): void {
    const now = Date.now();
    for (const [id, call] of this.spawned) {
      const expired = call.finishedAt !== undefined && now - call.finishedAt > SPAWN_RECORD_TTL_MS;
      if (expired || (this.spawned.size > SPAWN_RECORD_LIMIT && call.finishedAt !== undefined)) this.spawned.delete(id);
    }
  }

  private readBody(req: http.IncomingMessage, res: http.ServerResponse): Promise<string | undefined> {
    const limit = this.options.maxBodyBytes ?? 32 * 1024 * 1024;
    return new Promise((resolve) => {
      const chunks: Buffer[] = [];
      let size = 0;
      req.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size <= limit) chunks.push(chunk);
      });
      req.on('end', () => {
        if (size > limit) {
          this.fail(res, { type: 'BadRequest', message: `the request body is larger than ${limit} bytes` }, 413);
          resolve(undefined);
        } else {
          resolve(chunks.length === 1 ? chunks[0].toString('utf8') : Buffer.concat(chunks).toString('utf8'));
        }
      });
      req.on('error', () => resolve(undefined));
    });
  }

  private fail(res: http.ServerResponse, error: WireError, status = STATUS_OF[error.type]): void {
    this.send(res, status, { v: PROTOCOL_VERSION, kind: 'error', error });
  }

  private send(res: http.ServerResponse, status: number, reply: Reply): void {
    const payload =
      reply.kind === 'result'
        ? { ...reply, output: encodeInput(reply.output) }
        : reply.kind === 'status'
          ? { ...reply, output: encodeInput(reply.output) }
          : reply;
    this.sendBody(res, status, JSON.stringify(payload));
  }

  private sendBody(res: http.ServerResponse, status: number, body: string): void {
    const headers: http.OutgoingHttpHeaders = {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(body),
    };
    if (this.draining) headers.connection = 'close';
    res.writeHead(status, headers);
    res.end(body);
  }
}

export function toWire(error: unknown): WireError {
  if (error instanceof CallFailure) return error.wire;
  const err = error instanceof Error ? error : new Error(String(error));
  return { type: 'HandlerError' satisfies ErrorType, message: err.message, name: err.name, stack: err.stack };
}

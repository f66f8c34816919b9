/**
 * `serverless-gpu/client`: what generated clients build on.
 *
 *   const one = await classify.remote({ text });
 *   const many = await classify.map(inputs, { concurrency: 32 });
 *   const settled = await classify.mapSettled(inputs);   // per-item failures, nothing lost
 *   const call = await train.spawn(input); await call.status(); await call.get({ timeout: 60_000 });
 */
import { BatchTransport } from './batch-transport';
import { MapError, RemoteError, type Settled } from './errors';
import { googleIdTokenHeaders } from './google-id-token';
import { HttpTransport } from './http-transport';
import type { CallOptions, SpawnedStatus, Transport } from './transport';
import type { CallStatus } from '../protocol';

export { MapError, RemoteError, isRemoteError } from './errors';
export type { Settled } from './errors';
export type { CallOptions, SpawnedStatus, Transport } from './transport';
export { HttpTransport } from './http-transport';
export type { CallStatus } from '../protocol';

/** Where a function was deployed, as baked into a generated client. */
export interface DeployedFunction {
  readonly target: 'local' | 'cloudrun' | 'gke' | 'batch';
  /** Base URLs of the function's endpoints (HTTP targets). */
  readonly endpoints: readonly string[];
  /** Where inputs and outputs too large for a request body travel (a payload-store URL base). */
  readonly payloadStore?: string;
  /** How calls authenticate: a Google ID token for the endpoint's audience (Cloud Run). */
  readonly auth?: 'google-id-token';
  /** Where Batch jobs go and where their inputs and outputs live. */
  readonly batch?: {
    readonly region: string;
    readonly jobQueue: string;
    readonly jobDefinition: string;
    readonly callBucket: string;
    readonly callPrefix: string;
  };
}

export interface Deployment {
  readonly service: string;
  readonly stage: string;
  readonly functions: Readonly<Record<string, DeployedFunction>>;
}

export interface BindOptions {
  /** Endpoint(s) to use instead of the deployed ones (a caller in another network, a test). */
  readonly endpoint?: string | readonly string[];
  /** Deadline of each call when the call sets none. */
  readonly timeoutMs?: number;
  /** Replaces the transport entirely. */
  readonly transport?: Transport;
}

export interface MapOptions extends CallOptions {
  /** Calls in flight at once; default 16. */
  readonly concurrency?: number;
}

export interface GetOptions {
  /** How long to wait for the result, in milliseconds; default: wait for as long as it takes. */
  readonly timeout?: number;
}

/** A spawned call: poll it, or wait for its output. */
export interface FunctionCall<O> {
  readonly id: string;
  status(): Promise<CallStatus>;
  get(options?: GetOptions): Promise<O>;
}

export interface RemoteFunction<I, O> {
  readonly name: string;
  /** Calls the function and waits for its output. */
  remote(input: I, options?: CallOptions): Promise<O>;
  /** Calls it once per input, at most `concurrency` at a time; outputs in input order. Throws `MapError` if any failed. */
  map(inputs: Iterable<I>, options?: MapOptions): Promise<O[]>;
  /** Like `map`, but every item's outcome is returned and nothing throws. */
  mapSettled(inputs: Iterable<I>, options?: MapOptions): Promise<Array<Settled<O>>>;
  /** Starts a call and returns at once with a handle. */
  spawn(input: I, options?: CallOptions): Promise<FunctionCall<O>>;
  /** A copy bound to other options (endpoint, deadline, transport). */
  with(options: BindOptions): RemoteFunction<I, O>;
}

function envEndpoint(name: string): string[] | undefined {
  const value = process.env[`SERVERLESS_GPU_ENDPOINT_${name.replace(/[^A-Za-z0-9]/g, '_').toUpperCase()}`];
  return value ? value.split(',').map((s) => s.trim()).filter(Boolean) : undefined;
}

/**
 * How a function is reached: an endpoint given by the caller → HTTP to it; a Batch deployment → jobs
 * (BatchTransport); otherwise HTTP to the deployed endpoints, with a Google ID token when the deployment
 * requires one (Cloud Run).
 */
function transportFor(deployment: Deployment, name: string, options: BindOptions): Transport {
  if (options.transport) return options.transport;
  const deployed = deployment.functions[name];
  if (!deployed) throw new Error(`function "${name}" is not part of service ${deployment.service}`);
  const override = options.endpoint === undefined ? envEndpoint(name) : ([] as string[]).concat(options.endpoint);
  if (deployed.batch && override === undefined) {
    return new BatchTransport({ functionName: name, batch: deployed.batch, timeoutMs: options.timeoutMs });
  }
  return new HttpTransport({
    functionName: name,
    endpoints: override ?? deployed.endpoints,
    timeoutMs: options.timeoutMs,
    headers: deployed.auth === 'google-id-token' ? googleIdTokenHeaders({ functionName: name }) : undefined,
    payloadStore: deployed.payloadStore,
  });
}

async function settle<O>(promise: Promise<O>, name: string): Promise<Settled<O>> {
  try {
    return { ok: true, value: await promise };
  } catch (error) {
    const remote =
      error instanceof RemoteError
        ? error
        : new RemoteError(name, { type: 'Unreachable', message: (error as Error).message ?? String(error) });
    return { ok: false, error: remote };
  }
}

/** Runs `work` over items with at most `limit` in flight; results in input order. */
export async function boundedAll<T, R>(items: readonly T[], limit: number, work: (item: T, index: number) => Promise<R>): Promise<R[]> {
  if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`concurrency must be a positive integer, got ${limit}`);
  const results = new Array<R>(items.length);
  let nextIndex = 0;
  const worker = async (): Promise<void> => {
    while (nextIndex < items.length) {
      const index = nextIndex++;
      results[index] = await work(items[index], index);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

function spawnedHandle<O>(transport: Transport, name: string, id: string): FunctionCall<O> {
  return {
    id,
    status: async () => (await transport.status(id)).status,
    get: async (options: GetOptions = {}) => {
      const deadline = options.timeout === undefined ? Infinity : Date.now() + options.timeout;
      for (let attempt = 0; ; attempt += 1) {
        const current: SpawnedStatus = await transport.status(id);
        if (current.status === 'succeeded') return current.output as O;
        if (current.status === 'failed') {
          throw current.error ?? new RemoteError(name, { type: 'HandlerError', message: 'the call failed' });
        }
        const pause = Math.min(1_000, 25 * 2 ** attempt);
        if (Date.now() + pause > deadline) {
          throw new RemoteError(name, { type: 'Timeout', message: `call ${id} has not finished after ${options.timeout} ms` });
        }
        await new Promise((resolve) => setTimeout(resolve, pause));
      }
    },
  };
}

/** The typed handle of one deployed function; generated clients export one per function. */
export function bindFunction<I, O>(deployment: Deployment, name: string, options: BindOptions = {}): RemoteFunction<I, O> {
  let transport: Transport | undefined;
  const get = (): Transport => (transport ??= transportFor(deployment, name, options));
  const remote = async (input: I, callOptions?: CallOptions): Promise<O> => (await get().call(input, callOptions)) as O;
  const mapSettled = async (inputs: Iterable<I>, mapOptions: MapOptions = {}): Promise<Array<Settled<O>>> => {
    const items = [...inputs];
    let current: Transport | undefined;
    try {
      current = get();
    } catch {
      // Reported per item below, like any other failure.
    }
    // A transport that runs a whole map as one unit (a Batch array job) does so; others get one call per item.
    if (current?.mapMany) {
      try {
        return (await current.mapMany(items, mapOptions)) as Array<Settled<O>>;
      } catch (error) {
        return Promise.all(items.map(() => settle<O>(Promise.reject(error), name)));
      }
    }
    return boundedAll(items, mapOptions.concurrency ?? 16, (input) => settle(remote(input, mapOptions), name));
  };
  return {
    name,
    remote,
    mapSettled,
    map: async (inputs, mapOptions) => {
      const results = await mapSettled(inputs, mapOptions);
      if (results.some((r) => !r.ok)) throw new MapError<O>(name, results);
      return results.map((r) => (r as { ok: true; value: O }).value);
    },
    spawn: async (input, callOptions) => spawnedHandle<O>(get(), name, await get().spawn(input, callOptions)),
    with: (more) => bindFunction<I, O>(deployment, name, { ...options, ...more }),
  };
}

/**
 * The AWS Batch transport: a call is a job. Its input goes to the call bucket, SubmitJob starts it with
 * `SGPU_CALL_ID` (the job definition carries the bucket and prefix), DescribeJobs says how it is going, and
 * its output or error comes back from the bucket (see ../batch-store.ts for the layout and exit codes).
 *
 *   spawn(input)     → `<jobId>:<callId>`
 *   status(id)       → running | succeeded (output.json) | failed (error.json, else the job's reason)
 *   call(input)      → spawn, then poll with backoff (the Batch SDK has no waiters) until done or the deadline
 *   mapMany(inputs)  → one array job (`arrayProperties.size = n`; a plain job for n = 1), results per index
 *
 * Credentials and region come from the AWS SDK's usual chain; `AWS_ENDPOINT_URL_BATCH` and
 * `AWS_ENDPOINT_URL_S3` point it elsewhere (a test, a VPC endpoint). `@aws-sdk/client-batch` and
 * `@aws-sdk/client-s3` are imported lazily, on the first call.
 */
import { randomUUID } from 'node:crypto';
import type { BatchClient, JobDetail } from '@aws-sdk/client-batch';
import { CallStore, EXIT_RETRYABLE, MAX_ARRAY_SIZE, callKey, isRetryableAwsError, storeConfigFromEnv } from '../batch-store';
import { decodeOutput, encodeInput, type WireError } from '../protocol';
import { RemoteError, type Settled } from './errors';
import type { CallOptions, SpawnedStatus, Transport } from './transport';

/** Where a function's jobs go and where their inputs and outputs live (DeployedFunction.batch). */
export interface BatchTarget {
  readonly region: string;
  readonly jobQueue: string;
  readonly jobDefinition: string;
  readonly callBucket: string;
  readonly callPrefix: string;
}

export interface BatchTransportOptions {
  readonly functionName: string;
  readonly batch: BatchTarget;
  /** How long `call` and `mapMany` wait for jobs when the call sets no deadline; default 24 hours. */
  readonly timeoutMs?: number;
  /** First pause between two DescribeJobs; default 500 ms. */
  readonly minPollMs?: number;
  /** Longest pause between two DescribeJobs; default 15 s. */
  readonly maxPollMs?: number;
  /** Inputs uploaded (and results read) at once for an array job; default 16. */
  readonly ioConcurrency?: number;
}

type BatchModule = typeof import('@aws-sdk/client-batch');

interface Clients {
  readonly sdk: BatchModule;
  readonly batch: BatchClient;
  readonly store: CallStore;
}

const RUNNING = new Set(['SUBMITTED', 'PENDING', 'RUNNABLE', 'STARTING', 'RUNNING']);
const DESCRIBE_LIMIT = 100;
const DEFAULT_TIMEOUT_MS = 24 * 60 * 60_000;

/** A valid Batch job name: up to 128 letters, digits, hyphens and underscores, starting with a letter or digit. */
export function jobNameFor(functionName: string, callId: string): string {
  const suffix = `-${callId.replace(/[^A-Za-z0-9_-]/g, '-')}`;
  let base = functionName.replace(/[^A-Za-z0-9_-]/g, '-');
  if (!/^[A-Za-z0-9]/.test(base)) base = `f${base}`;
  return `${base.slice(0, 128 - suffix.length)}${suffix}`;
}

/** Splits a spawned call's id into its job id and call id. */
export function parseCallId(id: string): { jobId: string; callId: string } | undefined {
  const colon = id.indexOf(':');
  if (colon <= 0 || colon === id.length - 1) return undefined;
  return { jobId: id.slice(0, colon), callId: id.slice(colon + 1) };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function bounded<T, R>(items: readonly T[], limit: number, work: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const index = next++;
      results[index] = await work(items[index], index);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  return results;
}

export class BatchTransport implements Transport {
  private clients: Promise<Clients> | undefined;
  private readonly timeoutMs: number;
  private readonly minPollMs: number;
  private readonly maxPollMs: number;
  private readonly ioConcurrency: number;

  constructor(private readonly options: BatchTransportOptions) {
    const missing = (['region', 'jobQueue', 'jobDefinition', 'callBucket'] as const).filter((key) => !options.batch?.[key]);
    if (missing.length > 0) {
      throw new RemoteError(options.functionName, {
        type: 'Unreachable',
        message: `the Batch deployment is incomplete (no ${missing.join(', ')}): deploy the service, or regenerate the client`,
      });
    }
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.minPollMs = options.minPollMs ?? 500;
    this.maxPollMs = Math.max(this.minPollMs, options.maxPollMs ?? 15_000);
    this.ioConcurrency = options.ioConcurrency ?? 16;
  }

  async spawn(input: unknown, options: CallOptions = {}): Promise<string> {
    const callId = randomUUID();
    await this.putInput(callId, undefined, input);
    const jobId = await this.submit(callId, 1, options);
    return `${jobId}:${callId}`;
  }

  async status(id: string): Promise<SpawnedStatus> {
    const parsed = parseCallId(id);
    if (!parsed) throw this.error({ type: 'NotFound', message: `"${id}" is not the id of a Batch call` });
    const [job] = await this.describe([parsed.jobId]);
    if (!job) {
      // Batch forgets finished jobs after a while; the call's objects still say how it ended.
      const settled = await this.readResult(parsed.callId, undefined);
      if (!settled) throw this.error({ type: 'NotFound', message: `AWS Batch knows no job ${parsed.jobId}, and call ${parsed.callId} left no result` });
      return settled.ok ? { status: 'succeeded', output: settled.value } : { status: 'failed', error: settled.error };
    }
    if (RUNNING.has(job.status ?? '')) return { status: 'running' };
    const settled = (await this.readResult(parsed.callId, undefined)) ?? this.outcomeWithoutResult(job, parsed.callId, undefined);
    return settled.ok ? { status: 'succeeded', output: settled.value } : { status: 'failed', error: settled.error };
  }

  call(input: unknown, options: CallOptions = {}): Promise<unknown> {
    return this.callUntil(input, options, Date.now() + (options.timeoutMs ?? this.timeoutMs));
  }

  private async callUntil(input: unknown, options: CallOptions, deadline: number): Promise<unknown> {
    const started = Date.now();
    const id = await this.spawn(input, options);
    for (let attempt = 0; ; attempt += 1) {
      let current: SpawnedStatus | undefined;
      try {
        current = await this.status(id);
      } catch (error) {
        // A lost poll is not a lost job: keep polling until the deadline.
        if (!(error instanceof RemoteError) || error.type !== 'Unreachable') throw error;
      }
      if (current?.status === 'succeeded') return current.output;
      if (current?.status === 'failed') throw current.error ?? this.error({ type: 'HandlerError', message: `job ${id} failed` });
      const pause = this.pollDelay(attempt);
      if (Date.now() + pause >= deadline) {
        throw this.error({
          type: 'Timeout',
          message: `job ${id} has not finished after ${Date.now() - started} ms; it keeps running (spawn() and status() can follow it)`,
        });
      }
      await sleep(pause);
    }
  }

  async mapMany(inputs: readonly unknown[], options: CallOptions = {}): Promise<Array<Settled<unknown>>> {
    const deadline = Date.now() + (options.timeoutMs ?? this.timeoutMs);
    const chunks: unknown[][] = [];
    for (let start = 0; start < inputs.length; start += MAX_ARRAY_SIZE) chunks.push(inputs.slice(start, start + MAX_ARRAY_SIZE));
    const results = await Promise.all(chunks.map((chunk) => this.mapChunk(chunk, deadline, options)));
    return results.flat();
  }

  private async mapChunk(inputs: readonly unknown[], deadline: number, options: CallOptions): Promise<Array<Settled<unknown>>> {
    try {
      if (inputs.length === 1) {
        return [{ ok: true, value: await this.callUntil(inputs[0], options, deadline) }];
      }
      const callId = randomUUID();
      await bounded(inputs, this.ioConcurrency, (input, index) => this.putInput(callId, index, input));
      const jobId = await this.submit(callId, inputs.length, options);
      const parent = await this.waitForArray(jobId, inputs.length, deadline);
      const indices = inputs.map((_, index) => index);
      const settled = await bounded(indices, this.ioConcurrency, (index) => this.readResult(callId, index));
      const missing = indices.filter((index) => settled[index] === undefined);
      if (missing.length === 0) return settled as Array<Settled<unknown>>;
      if (!parent) {
        const timedOut = this.error({
          type: 'Timeout',
          message: `array job ${jobId} (call ${callId}) has not finished before the deadline; its children keep running`,
        });
        return settled.map((item) => item ?? { ok: false, error: timedOut });
      }
      // Children that left no result: their job's reason is all there is.
      const children = new Map<number, JobDetail>();
      for (let start = 0; start < missing.length; start += DESCRIBE_LIMIT) {
        const ids = missing.slice(start, start + DESCRIBE_LIMIT).map((index) => `${jobId}:${index}`);
        for (const child of await this.describe(ids)) if (child.arrayProperties?.index !== undefined) children.set(child.arrayProperties.index, child);
      }
      return settled.map((item, index) => item ?? this.outcomeWithoutResult(children.get(index) ?? parent, callId, index));
    } catch (error) {
      const failure =
        error instanceof RemoteError ? error : this.error({ type: 'Unreachable', message: (error as Error).message ?? String(error) });
      return inputs.map(() => ({ ok: false, error: failure }));
    }
  }

  /** Polls an array job until it and all its children have finished; undefined when the deadline came first. */
  private async waitForArray(jobId: string, size: number, deadline: number): Promise<JobDetail | undefined> {
    for (let attempt = 0; ; attempt += 1) {
      let job: JobDetail | undefined;
      try {
        [job] = await this.describe([jobId]);
      } catch (error) {
        if (!(error instanceof RemoteError) || error.type !== 'Unreachable') throw error;
      }
      if (job && !RUNNING.has(job.status ?? '')) {
        const summary = job.arrayProperties?.statusSummary ?? {};
        const finished = (summary.SUCCEEDED ?? 0) + (summary.FAILED ?? 0);
        if (job.arrayProperties?.statusSummary === undefined || finished >= size) return job;
      }
      const pause = this.pollDelay(attempt);
      if (Date.now() + pause >= deadline) return undefined;
      await sleep(pause);
    }
  }

  private pollDelay(attempt: number): number {
    const ceiling = Math.min(this.maxPollMs, this.minPollMs * 1.5 ** attempt);
    return ceiling * (0.75 + Math.random() * 0.25);
  }

  private clientsReady(): Promise<Clients> {
    this.clients ??= (async () => {
      const { region } = this.options.batch;
      const [sdk, store] = await Promise.all([import('@aws-sdk/client-batch'), CallStore.open(storeConfigFromEnv(process.env, region))]);
      return { sdk, store, batch: new sdk.BatchClient({ region }) };
    })();
    this.clients.catch(() => (this.clients = undefined));
    return this.clients;
  }

  private async putInput(callId: string, index: number | undefined, input: unknown): Promise<void> {
    const { store } = await this.clientsReady();
    const key = callKey(this.options.batch.callPrefix, callId, 'input', index);
    try {
      await store.putJson(this.options.batch.callBucket, key, encodeInput(input));
    } catch (error) {
      throw this.awsError(error, `cannot write the input to s3://${this.options.batch.callBucket}/${key}`);
    }
  }

  private async submit(callId: string, size: number, options: CallOptions): Promise<string> {
    const { sdk, batch } = await this.clientsReady();
    const environment = [{ name: 'SGPU_CALL_ID', value: callId }];
    // The job keeps to the caller's deadline too (the runner takes the lesser of it and the function's timeout).
    if (options.timeoutMs !== undefined) environment.push({ name: 'SGPU_TIMEOUT_MS', value: String(Math.ceil(options.timeoutMs)) });
    try {
      const reply = await batch.send(
        new sdk.SubmitJobCommand({
          jobName: jobNameFor(this.options.functionName, callId),
          jobQueue: this.options.batch.jobQueue,
          jobDefinition: this.options.batch.jobDefinition,
          containerOverrides: { environment },
          ...(size >= 2 && { arrayProperties: { size } }),
        }),
      );
      if (!reply.jobId) throw new Error('SubmitJob answered without a job id');
      return reply.jobId;
    } catch (error) {
      throw this.awsError(error, `cannot submit a job to ${this.options.batch.jobQueue}`);
    }
  }

  private async describe(jobIds: readonly string[]): Promise<JobDetail[]> {
    const { sdk, batch } = await this.clientsReady();
    try {
      const reply = await batch.send(new sdk.DescribeJobsCommand({ jobs: [...jobIds] }));
      return reply.jobs ?? [];
    } catch (error) {
      throw this.awsError(error, `cannot describe job ${jobIds[0]}${jobIds.length > 1 ? ` and ${jobIds.length - 1} more` : ''}`);
    }
  }

  /** The call's output or error from the bucket; undefined when it left neither. */
  private async readResult(callId: string, index: number | undefined): Promise<Settled<unknown> | undefined> {
    const { store } = await this.clientsReady();
    const { callBucket, callPrefix } = this.options.batch;
    const read = async (object: 'output' | 'error'): Promise<unknown> => {
      const key = callKey(callPrefix, callId, object, index);
      try {
        return await store.getJson(callBucket, key);
      } catch (error) {
        throw this.awsError(error, `cannot read s3://${callBucket}/${key}`);
      }
    };
    const output = await read('output');
    if (output !== undefined) return { ok: true, value: decodeOutput(output) };
    const wire = (await read('error')) as WireError | undefined;
    if (wire === undefined) return undefined;
    return { ok: false, error: this.error(typeof wire === 'object' && wire !== null && 'type' in wire ? wire : { type: 'HandlerError', message: String(wire) }) };
  }

  /** The outcome of a finished job (or child) that wrote no result object. */
  private outcomeWithoutResult(job: JobDetail, callId: string, index: number | undefined): Settled<unknown> {
    const where = `s3://${this.options.batch.callBucket}/${callKey(this.options.batch.callPrefix, callId, 'output', index)}`;
    const jobName = `${job.jobId}${index !== undefined && job.arrayProperties?.index === undefined ? ` (child ${index})` : ''}`;
    if (job.status === 'SUCCEEDED') {
      return { ok: false, error: this.error({ type: 'NotFound', message: `job ${jobName} succeeded but wrote no output at ${where}` }) };
    }
    const exitCode = job.container?.exitCode;
    const reasons = [job.statusReason, job.container?.reason].filter((r): r is string => Boolean(r));
    const details = [
      reasons.join(': ') || 'no reason given',
      exitCode !== undefined ? `exit code ${exitCode}` : undefined,
      job.container?.logStreamName ? `log stream ${job.container.logStreamName}` : undefined,
    ].filter(Boolean);
    const message = `job ${jobName} failed (${details.join('; ')})`;
    // A job stopped for its time limit timed out; one that never ran, or gave up on a retryable failure
    // (exit 75: the store was out of reach), did not run the handler to the end.
    if (/timeout|timed out/i.test(reasons.join(' '))) return { ok: false, error: this.error({ type: 'Timeout', message }) };
    if (exitCode === undefined || exitCode === EXIT_RETRYABLE) return { ok: false, error: this.error({ type: 'Unreachable', message }) };
    return { ok: false, error: this.error({ type: 'HandlerError', message }) };
  }

  private awsError(error: unknown, what: string): RemoteError {
    if (error instanceof RemoteError) return error;
    const e = error as Error & { $metadata?: { httpStatusCode?: number } };
    const status = e.$metadata?.httpStatusCode;
    const message = `${what}: ${e.name && e.name !== 'Error' ? `${e.name}: ` : ''}${e.message}`;
    return isRetryableAwsError(error)
      ? new RemoteError(this.options.functionName, { type: 'Unreachable', message }, status)
      : new RemoteError(this.options.functionName, { type: 'BadRequest', message }, status);
  }

  private error(wire: WireError | { type: 'Unreachable'; message: string }): RemoteError {
    return new RemoteError(this.options.functionName, wire);
  }
}

/**
 * The container's batch mode (`SGPU_MODE=batch`): one AWS Batch job (or one child of an array job) runs
 * one call, then the process exits. See batch-store.ts for the objects and exit codes.
 *
 *   1. read the input from `s3://$SGPU_CALL_BUCKET/$SGPU_CALL_PREFIX$SGPU_CALL_ID/input[-$AWS_BATCH_JOB_ARRAY_INDEX].json`
 *   2. validate it against the function's contract
 *   3. fetch the weights (when SGPU_WEIGHTS_BUCKET is set: weights-fetch.ts), run setup once, then the handler
 *   4. write output[-i].json, or error[-i].json holding the protocol's WireError
 *
 * It exits 1 for failures another attempt would repeat (the input is invalid, setup or the handler
 * threw, the deadline passed) and 75 for those it may not (the store could not be reached).
 */
import {
  CallStore,
  EXIT_FAILED,
  EXIT_RETRYABLE,
  EXIT_SUCCEEDED,
  callKey,
  isRetryableAwsError,
  storeConfigFromEnv,
} from './batch-store';
import { loadFunction } from './load';
import type { ShimManifest } from './manifest';
import { containsTypedTag, decodeValue, encodeInput, type WireError } from './protocol';
import { CallFailure, toWire } from './server';
import type { Context, SetupContext } from './types';
import { compileValidator } from './validate';

export type BatchEnv = Readonly<Record<string, string | undefined>>;

export interface BatchRunOptions {
  /** Where log lines go; default stderr (CloudWatch Logs on Batch). */
  readonly log?: (line: string) => void;
}

/** Time kept back from the function's timeout to report a Timeout before Batch stops the attempt. */
const REPORT_MARGIN_MS = 5_000;

interface JobEnv {
  readonly bucket: string;
  readonly prefix: string;
  readonly callId: string;
  readonly index?: number;
}

function readJobEnv(env: BatchEnv): JobEnv | string {
  const missing = ['SGPU_CALL_BUCKET', 'SGPU_CALL_PREFIX', 'SGPU_CALL_ID'].filter((name) => env[name] === undefined || env[name] === '');
  if (missing.length > 0) return `${missing.join(', ')} ${missing.length === 1 ? 'is' : 'are'} not set: the job definition and SubmitJob set them`;
  const rawIndex = env.AWS_BATCH_JOB_ARRAY_INDEX;
  let index: number | undefined;
  if (rawIndex !== undefined && rawIndex !== '') {
    index = Number(rawIndex);
    if (!Number.isInteger(index) || index < 0) return `AWS_BATCH_JOB_ARRAY_INDEX is "${rawIndex}", not an index`;
  }
  return { bucket: env.SGPU_CALL_BUCKET!, prefix: env.SGPU_CALL_PREFIX!, callId: env.SGPU_CALL_ID!, index };
}

/** Why a store request failed, in one line. */
function describeAwsError(error: unknown): string {
  const e = error as Error & { $metadata?: { httpStatusCode?: number }; code?: string; cause?: { code?: string } };
  const status = e.$metadata?.httpStatusCode;
  const code = e.code ?? e.cause?.code;
  return `${e.name ?? 'Error'}${status ? ` (HTTP ${status})` : ''}${code && code !== e.name ? ` [${code}]` : ''}: ${e.message}`;
}

/** True when a failed weights fetch may succeed on another attempt (the store did not answer, or answered 5xx/429). */
function isRetryableWeightsError(error: unknown): boolean {
  const e = error as Error;
  if (e?.name === 'WeightsIntegrityError' || e?.name === 'ObjectNotFoundError') return false;
  if (/no weights synced|is missing its manifest/.test(e?.message ?? '')) return false;
  const status = /\(HTTP (\d{3})\)/.exec(e?.message ?? '')?.[1];
  if (status) return Number(status) >= 500 || Number(status) === 429;
  // The store's errors say no more: assume the network (another attempt, maybe on another host).
  return true;
}

/**
 * The hook where a job gets its weights before setup: Batch cannot mount the weights bucket, so they are
 * copied from `s3://$SGPU_WEIGHTS_BUCKET/$SGPU_WEIGHTS_PREFIX` into the weights path (weights-fetch.ts).
 */
async function fetchWeightsBeforeSetup(env: BatchEnv, weightsPath: string, log: (line: string) => void): Promise<void> {
  if (!env.SGPU_WEIGHTS_BUCKET) return;
  const { fetchWeightsFromEnv } = await import('./weights-fetch');
  const result = await fetchWeightsFromEnv({ ...env, SGPU_WEIGHTS_PATH: weightsPath }, log);
  if (!result) log(`weights: SGPU_WEIGHTS_BUCKET is set but SGPU_WEIGHTS_PREFIX is not: nothing fetched`);
}

/** Runs the job the environment describes and resolves with the process's exit code. Never rejects. */
export async function runBatchJob(manifest: ShimManifest, manifestFile: string, env: BatchEnv = process.env, options: BatchRunOptions = {}): Promise<number> {
  const started = Date.now();
  const log = options.log ?? ((line: string) => process.stderr.write(`[${manifest.function}] ${line}\n`));
  const parsed = readJobEnv(env);
  if (typeof parsed === 'string') {
    log(`cannot run: ${parsed}`);
    return EXIT_FAILED;
  }
  const job: JobEnv = parsed;
  const name = job.index === undefined ? job.callId : `${job.callId}-${job.index}`;
  const keyOf = (object: 'input' | 'output' | 'error'): string => callKey(job.prefix, job.callId, object, job.index);
  const where = (object: 'input' | 'output' | 'error'): string => `s3://${job.bucket}/${keyOf(object)}`;

  let store: CallStore;
  try {
    store = await CallStore.open(storeConfigFromEnv(env));
  } catch (error) {
    log(`cannot load the S3 client: ${(error as Error).stack ?? String(error)}`);
    return EXIT_FAILED;
  }

  /** Writes error.json; exits 1, or 75 when it could not be written for a reason that may pass. */
  const fail = async (wire: WireError): Promise<number> => {
    log(`call ${name} failed (${wire.type}): ${wire.stack ?? wire.message}`);
    try {
      await store.putJson(job.bucket, keyOf('error'), wire);
      return EXIT_FAILED;
    } catch (error) {
      log(`cannot write ${where('error')}: ${describeAwsError(error)}`);
      return isRetryableAwsError(error) ? EXIT_RETRYABLE : EXIT_FAILED;
    }
  };

  try {
    return await runCall();
  } catch (error) {
    // Not expected: report it as the job's failure rather than crash without a word.
    return await fail({ type: 'HandlerError', message: `the job runner failed: ${(error as Error).message}`, stack: (error as Error).stack });
  } finally {
    store.destroy();
  }

  async function runCall(): Promise<number> {
    // 1. The input.
    let raw: unknown;
    try {
      raw = await store.getJson(job.bucket, keyOf('input'));
    } catch (error) {
      log(`cannot read ${where('input')}: ${describeAwsError(error)}`);
      if (isRetryableAwsError(error)) return EXIT_RETRYABLE;
      return fail({ type: 'BadRequest', message: `cannot read the input at ${where('input')}: ${(error as Error).message}` });
    }
    if (raw === undefined) return fail({ type: 'BadRequest', message: `no input at ${where('input')}` });
    const input = containsTypedTag(raw) ? decodeValue(raw) : raw;
    log(`call ${name}: input read in ${Date.now() - started} ms`);

    // 2. Its contract.
    const schema = manifest.contract?.input;
    const failure = schema ? compileValidator(schema)(input) : undefined;
    if (failure) return fail({ type: 'ValidationError', message: failure.message, path: failure.path });

    // 3. Weights, setup once, then the handler, within the function's deadline.
    const weightsPath = env.SGPU_WEIGHTS_PATH ?? manifest.weightsPath;
    const timeoutMs = Math.min(manifest.timeoutMs, Number(env.SGPU_TIMEOUT_MS) > 0 ? Number(env.SGPU_TIMEOUT_MS) : Infinity);
    const deadline = started + Math.max(1_000, timeoutMs - Math.min(REPORT_MARGIN_MS, timeoutMs / 10));
    let instance: ReturnType<ReturnType<typeof loadFunction>['instantiate']>;
    try {
      instance = loadFunction(manifestFile, manifest).instantiate();
    } catch (error) {
      return fail({ ...toWire(error), message: `cannot load ${manifest.function}: ${(error as Error).message}` });
    }
    try {
      await fetchWeightsBeforeSetup(env, weightsPath, log);
    } catch (error) {
      log(`cannot fetch the weights: ${describeAwsError(error)}`);
      if (isRetryableWeightsError(error)) return EXIT_RETRYABLE;
      return fail({ type: 'NotReady', message: `cannot fetch the weights: ${(error as Error).message}` });
    }
    const controller = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        controller.abort(new Error('deadline passed'));
        reject(new CallFailure({ type: 'Timeout', message: `the call ran past its deadline of ${timeoutMs} ms` }));
      }, Math.max(0, deadline - Date.now()));
    });
    timedOut.catch(() => undefined);
    let output: unknown;
    try {
      const setupStarted = Date.now();
      const setupContext: SetupContext = {
        functionName: manifest.function,
        weights: { path: weightsPath },
        log: (message) => log(`setup: ${message}`),
      };
      try {
        await Promise.race([instance.setup(setupContext), timedOut]);
      } catch (error) {
        if (error instanceof CallFailure) throw error;
        return fail({ ...toWire(error), message: `setup failed: ${(error as Error).message ?? String(error)}` });
      }
      log(`setup finished in ${Date.now() - setupStarted} ms`);
      const ctx: Context = {
        functionName: manifest.function,
        callId: name,
        signal: controller.signal,
        weights: { path: weightsPath },
        log: (message) => log(`${name}: ${message}`),
      };
      const handlerStarted = Date.now();
      output = await Promise.race([instance.invoke(input, ctx), timedOut]);
      log(`call ${name}: handler finished in ${Date.now() - handlerStarted} ms`);
    } catch (error) {
      return fail(toWire(error));
    } finally {
      clearTimeout(timer);
    }

    // 4. The output.
    let body: string;
    try {
      body = JSON.stringify(encodeInput(output)) ?? 'null';
    } catch (error) {
      return fail({ type: 'HandlerError', name: (error as Error).name, message: `the handler's output cannot be sent as JSON: ${(error as Error).message}` });
    }
    try {
      await store.putText(job.bucket, keyOf('output'), body);
    } catch (error) {
      log(`cannot write ${where('output')}: ${describeAwsError(error)}`);
      return isRetryableAwsError(error) ? EXIT_RETRYABLE : EXIT_FAILED;
    }
    log(`call ${name} succeeded in ${Date.now() - started} ms`);
    return EXIT_SUCCEEDED;
  }
}

/**
 * The Batch call contract shared by the job runner (in the container) and the Batch transport (in the
 * caller): where a call's objects live in the call bucket, how a job reports its outcome, and a small
 * JSON view of S3.
 *
 *   <callPrefix><callId>/input.json       the input of a single job      (protocol.encodeValue)
 *   <callPrefix><callId>/output.json      its output, when it succeeded  (protocol.encodeValue)
 *   <callPrefix><callId>/error.json       its WireError, when it failed
 *   <callPrefix><callId>/input-<i>.json   the same per child of an array job (AWS_BATCH_JOB_ARRAY_INDEX = i)
 *
 * A job exits 0 (success), 1 (the handler threw or the input was invalid: Batch must not retry) or 75 (a
 * retryable failure, e.g. the store could not be reached: the job definition retries on 75).
 *
 * `@aws-sdk/client-s3` is imported lazily: HTTP containers and HTTP callers never load it.
 */
import type { S3Client, S3ClientConfig } from '@aws-sdk/client-s3';

export const EXIT_SUCCEEDED = 0;
export const EXIT_FAILED = 1;
export const EXIT_RETRYABLE = 75;

/** Largest array job AWS Batch accepts. */
export const MAX_ARRAY_SIZE = 10_000;

export type CallObject = 'input' | 'output' | 'error';

/** The key of one of a call's objects; `index` for the children of an array job. */
export function callKey(prefix: string, callId: string, object: CallObject, index?: number): string {
  const base = prefix === '' || prefix.endsWith('/') ? prefix : `${prefix}/`;
  return `${base}${callId}/${object}${index === undefined ? '' : `-${index}`}.json`;
}

type S3Module = typeof import('@aws-sdk/client-s3');
let s3Module: Promise<S3Module> | undefined;

function loadS3(): Promise<S3Module> {
  s3Module ??= import('@aws-sdk/client-s3');
  return s3Module;
}

export interface StoreConfig {
  readonly region?: string;
  /** An S3-compatible endpoint (AWS_ENDPOINT_URL_S3); addressed path-style. */
  readonly endpoint?: string;
  readonly credentials?: { readonly accessKeyId: string; readonly secretAccessKey: string; readonly sessionToken?: string };
}

/** The store configuration an environment describes (the container's, or the caller's process). */
export function storeConfigFromEnv(env: Readonly<Record<string, string | undefined>>, region?: string): StoreConfig {
  const accessKeyId = env.AWS_ACCESS_KEY_ID;
  const secretAccessKey = env.AWS_SECRET_ACCESS_KEY;
  return {
    region: region ?? env.AWS_REGION ?? env.AWS_DEFAULT_REGION,
    endpoint: env.AWS_ENDPOINT_URL_S3 || undefined,
    // Explicit keys in the environment win; otherwise the SDK's chain (job role, profile, SSO...) applies.
    credentials:
      accessKeyId && secretAccessKey ? { accessKeyId, secretAccessKey, ...(env.AWS_SESSION_TOKEN && { sessionToken: env.AWS_SESSION_TOKEN }) } : undefined,
  };
}

const NETWORK_CODES = /^(ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|EAI_AGAIN|ENOTFOUND|EHOSTUNREACH|ENETUNREACH|ECONNABORTED|UND_ERR)/;
const TRANSIENT_NAMES = /Throttl|SlowDown|Timeout|TooManyRequests|CredentialsProviderError/;

/**
 * True when a failed S3 (or other AWS) request may succeed later: no answer (network), throttling, a
 * server error, credentials not reachable yet. False for answers that will not change (403, 404, 400...)
 * and for errors that are not about the request at all.
 */
export function isRetryableAwsError(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const e = error as { $metadata?: { httpStatusCode?: number }; name?: string; code?: string; cause?: { code?: string } };
  const status = e.$metadata?.httpStatusCode;
  if (status !== undefined) return status >= 500 || status === 429 || TRANSIENT_NAMES.test(e.name ?? '');
  // The SDK tags what it sent with $metadata: no status there means no answer.
  if (e.$metadata !== undefined) return true;
  return NETWORK_CODES.test(e.code ?? e.cause?.code ?? '') || TRANSIENT_NAMES.test(e.name ?? '');
}

function isMissing(error: unknown): boolean {
  const e = error as { $metadata?: { httpStatusCode?: number }; name?: string };
  return e?.name === 'NoSuchKey' || e?.$metadata?.httpStatusCode === 404;
}

/** JSON objects in a bucket. */
export class CallStore {
  private constructor(
    private readonly sdk: S3Module,
    readonly client: S3Client,
  ) {}

  static async open(config: StoreConfig): Promise<CallStore> {
    const sdk = await loadS3();
    const options: S3ClientConfig = {
      ...(config.region && { region: config.region }),
      // S3-compatible servers are addressed path-style, and get checksums only where S3 requires them.
      ...(config.endpoint && {
        endpoint: config.endpoint,
        forcePathStyle: true,
        requestChecksumCalculation: 'WHEN_REQUIRED' as const,
        responseChecksumValidation: 'WHEN_REQUIRED' as const,
      }),
      ...(config.credentials && { credentials: config.credentials }),
      // A store that does not answer must not hang a job or a caller.
      requestHandler: { connectionTimeout: 10_000, requestTimeout: 120_000 },
    };
    return new CallStore(sdk, new sdk.S3Client(options));
  }

  /** The parsed object, or undefined when there is no such key. */
  async getJson(bucket: string, key: string): Promise<unknown> {
    let text: string | undefined;
    try {
      const reply = await this.client.send(new this.sdk.GetObjectCommand({ Bucket: bucket, Key: key }));
      text = await reply.Body?.transformToString('utf8');
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw error;
    }
    if (text === undefined) return undefined;
    try {
      return JSON.parse(text) as unknown;
    } catch {
      throw new Error(`s3://${bucket}/${key} is not JSON`);
    }
  }

  /** Writes a value as JSON (`undefined` as `null`); JSON.stringify's errors (a BigInt, a cycle) are thrown before anything is sent. */
  async putJson(bucket: string, key: string, value: unknown): Promise<void> {
    await this.putText(bucket, key, JSON.stringify(value) ?? 'null');
  }

  async putText(bucket: string, key: string, text: string): Promise<void> {
    await this.client.send(new this.sdk.PutObjectCommand({ Bucket: bucket, Key: key, Body: text, ContentType: 'application/json' }));
  }

  destroy(): void {
    this.client.destroy();
  }
}

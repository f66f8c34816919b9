/**
 * The few object-store operations weights need, behind one interface, so the sync (plugin side) and the
 * fetch (container side) are written once for S3 (`s3.ts`) and Cloud Storage (`gcs.ts`). A store is
 * bound to one bucket; keys are full object names inside it.
 */
import { Transform } from 'node:stream';

/** One object as a listing or a HEAD tells it. */
export interface StoredObject {
  readonly key: string;
  readonly size: number;
  /**
   * The object's SHA-256 (hex) when the store keeps it where a listing or HEAD can answer: Cloud Storage
   * custom metadata `sgpu-sha256` (listings include it), S3 object metadata (HEAD only) or S3's own
   * full-object `ChecksumSHA256`.
   */
  readonly sha256?: string;
  /** The MD5 (hex) the store computed, when it tells it (GCS `md5Hash`; S3 ETag of a single-part upload). */
  readonly md5?: string;
  readonly modified?: Date;
}

/** A body to upload: bytes in memory, or a file the store reads (and re-reads on a retry) itself. */
export type PutBody = Buffer | { readonly file: string; readonly size: number };

export interface PutOptions {
  /** SHA-256 (hex) of the body: stored as metadata `sgpu-sha256` and, where the store checks it, verified on receipt. */
  readonly sha256?: string;
  readonly contentType?: string;
  /** Called with each chunk's length as the body is read for sending (for progress bars). */
  readonly onBytes?: (bytes: number) => void;
}

/** Byte range, both ends inclusive (as in HTTP `Range: bytes=start-end`). */
export interface ByteRange {
  readonly start: number;
  readonly end: number;
}

export interface ObjectStore {
  /** `s3` or `gcs`, for messages and URLs. */
  readonly kind: 's3' | 'gcs';
  readonly bucket: string;
  /** Every object whose key starts with `prefix`, in key order, across all pages. */
  list(prefix: string): Promise<StoredObject[]>;
  put(key: string, body: PutBody, options?: PutOptions): Promise<void>;
  /** The object's bytes (or a range of them); throws `ObjectNotFoundError` when it is missing. */
  get(key: string, range?: ByteRange): Promise<Buffer>;
  /** The object's size and checksums, or undefined when it is missing. */
  head(key: string): Promise<StoredObject | undefined>;
  /** Server-side copy inside the bucket: no bytes pass through this process. */
  copy(from: string, to: string): Promise<void>;
  /** Deletes the keys; missing keys are not an error. */
  delete(keys: readonly string[]): Promise<void>;
}

export class ObjectNotFoundError extends Error {
  override readonly name = 'ObjectNotFoundError';
  constructor(readonly url: string) {
    super(`${url} does not exist`);
  }
}

export const isObjectNotFound = (error: unknown): error is ObjectNotFoundError => error instanceof ObjectNotFoundError;

/** `s3://bucket/key` or `gs://bucket/key`, for messages. */
export function objectUrl(store: Pick<ObjectStore, 'kind' | 'bucket'>, key: string): string {
  return `${store.kind === 's3' ? 's3' : 'gs'}://${store.bucket}/${key}`;
}

/** A small text object, or undefined when it is missing. */
export async function getText(store: ObjectStore, key: string): Promise<string | undefined> {
  try {
    return (await store.get(key)).toString('utf8');
  } catch (error) {
    if (isObjectNotFound(error)) return undefined;
    throw error;
  }
}

export async function putText(store: ObjectStore, key: string, text: string, sha256?: string): Promise<void> {
  await store.put(key, Buffer.from(text, 'utf8'), { contentType: text.startsWith('{') ? 'application/json' : 'text/plain', sha256 });
}

/** A pass-through that reports the length of each chunk going through it. */
export function countingStream(onBytes: (bytes: number) => void): Transform {
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      onBytes(chunk.length);
      callback(null, chunk);
    },
  });
}

/** Runs `fn` over `items` with at most `limit` at a time; the first failure rejects (the rest still settle). */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  let failed: { error: unknown } | undefined;
  const worker = async (): Promise<void> => {
    while (!failed && next < items.length) {
      const index = next++;
      try {
        results[index] = await fn(items[index], index);
      } catch (error) {
        failed ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  if (failed) throw failed.error;
  return results;
}

/**
 * `ObjectStore` over Google Cloud Storage with `@google-cloud/storage`.
 *
 * Endpoint: the library's own setting decides (`STORAGE_EMULATOR_HOST`; it then sends no credentials).
 * Integrity: uploads are checked by the library against the CRC32C Cloud Storage computes (a mismatch
 * fails the upload and deletes the object), and keep the SHA-256 (hex) in custom metadata `sgpu-sha256`,
 * which listings return, so a listing alone says what each object holds. Files larger than
 * `resumableThreshold` use a resumable upload. Copies are rewrites inside Cloud Storage; the library
 * follows rewrite tokens for large objects.
 *
 * Tested here by request shape against a loopback fake of the JSON API (`fake-gcs.ts`): no Cloud Storage
 * server can be run on these machines.
 */
import fs from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { Storage, type File, type FileMetadata } from '@google-cloud/storage';
import { ProviderError } from '../../plugin/errors';
import { countingStream, mapLimit, ObjectNotFoundError, objectUrl, type ByteRange, type ObjectStore, type PutBody, type PutOptions, type StoredObject } from './object-store';

export interface GcsStoreOptions {
  readonly bucket: string;
  /** `provider.gcp.project`: only used for billing of requester-pays buckets and messages. */
  readonly projectId?: string;
  /** Files larger than this use a resumable upload (default 8 MiB). */
  readonly resumableThreshold?: number;
  /** Keys per listing page (default 1000, Cloud Storage's maximum). */
  readonly pageSize?: number;
  /** Deletes in flight at once (Cloud Storage deletes one object per request; default 16). */
  readonly deleteConcurrency?: number;
  readonly storage?: Storage;
}

const METADATA_SHA256 = 'sgpu-sha256';

const base64ToHex = (b64: string | undefined): string | undefined => (b64 ? Buffer.from(b64, 'base64').toString('hex') : undefined);

function statusOf(error: unknown): number | undefined {
  const code = (error as { code?: unknown })?.code;
  return typeof code === 'number' ? code : undefined;
}

function describe(key: string, metadata: FileMetadata): StoredObject {
  const custom = metadata.metadata as Record<string, string | undefined> | undefined;
  return {
    key,
    size: Number(metadata.size ?? 0),
    sha256: custom?.[METADATA_SHA256] ?? undefined,
    md5: base64ToHex(metadata.md5Hash),
    modified: metadata.updated ? new Date(metadata.updated) : undefined,
  };
}

export class GcsStore implements ObjectStore {
  readonly kind = 'gcs' as const;
  readonly bucket: string;
  readonly storage: Storage;
  private readonly resumableThreshold: number;
  private readonly pageSize: number;
  private readonly deleteConcurrency: number;

  constructor(options: GcsStoreOptions) {
    this.bucket = options.bucket;
    this.storage = options.storage ?? new Storage(options.projectId ? { projectId: options.projectId } : {});
    this.resumableThreshold = options.resumableThreshold ?? 8 * 1024 * 1024;
    this.pageSize = options.pageSize ?? 1000;
    this.deleteConcurrency = options.deleteConcurrency ?? 16;
  }

  private file(key: string): File {
    return this.storage.bucket(this.bucket).file(key);
  }

  private fail(operation: string, key: string, error: unknown): never {
    if (error instanceof ProviderError) throw error;
    if (operation === 'get' && statusOf(error) === 404) throw new ObjectNotFoundError(objectUrl(this, key));
    const status = statusOf(error) ? ` (HTTP ${statusOf(error)})` : '';
    throw new ProviderError('WEIGHTS_STORE', `Cloud Storage ${operation} ${objectUrl(this, key)} failed${status}: ${(error as Error).message}`);
  }

  async list(prefix: string): Promise<StoredObject[]> {
    const objects: StoredObject[] = [];
    let pageToken: string | undefined;
    try {
      do {
        const [files, next] = await this.storage.bucket(this.bucket).getFiles({ prefix, autoPaginate: false, maxResults: this.pageSize, pageToken });
        for (const file of files) objects.push(describe(file.name, file.metadata));
        pageToken = (next as { pageToken?: string } | null)?.pageToken;
      } while (pageToken);
    } catch (error) {
      this.fail('list', prefix, error);
    }
    return objects;
  }

  async put(key: string, body: PutBody, options: PutOptions = {}): Promise<void> {
    const size = Buffer.isBuffer(body) ? body.length : body.size;
    const metadata = {
      contentType: options.contentType ?? 'application/octet-stream',
      ...(options.sha256 ? { metadata: { [METADATA_SHA256]: options.sha256 } } : {}),
    };
    try {
      if (Buffer.isBuffer(body)) {
        await this.file(key).save(body, { resumable: false, metadata, validation: 'crc32c' });
        options.onBytes?.(body.length);
        return;
      }
      const sink = this.file(key).createWriteStream({ resumable: size > this.resumableThreshold, metadata, validation: 'crc32c' });
      const source = fs.createReadStream(body.file, { highWaterMark: 1024 * 1024 });
      await (options.onBytes ? pipeline(source, countingStream(options.onBytes), sink) : pipeline(source, sink));
    } catch (error) {
      this.fail('put', key, error);
    }
  }

  async get(key: string, range?: ByteRange): Promise<Buffer> {
    try {
      const [data] = await this.file(key).download(range ? { start: range.start, end: range.end } : {});
      return data;
    } catch (error) {
      return this.fail('get', key, error);
    }
  }

  async head(key: string): Promise<StoredObject | undefined> {
    try {
      const [metadata] = await this.file(key).getMetadata();
      return describe(key, metadata);
    } catch (error) {
      if (statusOf(error) === 404) return undefined;
      return this.fail('head', key, error);
    }
  }

  async copy(from: string, to: string): Promise<void> {
    try {
      await this.file(from).copy(this.file(to));
    } catch (error) {
      this.fail('copy', from, error);
    }
  }

  async delete(keys: readonly string[]): Promise<void> {
    await mapLimit(keys, this.deleteConcurrency, async (key) => {
      try {
        await this.file(key).delete({ ignoreNotFound: true });
      } catch (error) {
        this.fail('delete', key, error);
      }
    });
  }
}

export function openGcsStore(options: GcsStoreOptions): GcsStore {
  return new GcsStore(options);
}

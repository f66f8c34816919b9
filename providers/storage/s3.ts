/**
 * `ObjectStore` over Amazon S3 (or any S3-compatible store) with the AWS SDK v3.
 *
 * Endpoint: the SDK's own settings decide (`AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT_URL`, the shared config
 * file); when one of the environment variables names a custom endpoint, requests go path-style
 * (`http://host/bucket/key`, which S3-compatible servers expect) and the SDK only adds request checksums
 * where the operation requires them, as such servers often do not understand `aws-chunked` trailers. On
 * AWS itself the SDK's default (a CRC32 trailer on every upload) stays on.
 *
 * Integrity: bodies of a known SHA-256 are sent with `x-amz-checksum-sha256` (S3 rejects a body that does
 * not match) and keep the hex digest in metadata `sgpu-sha256`. Files larger than `multipartThreshold`
 * go up in parts read straight from the file, a few at a time; a failed upload is aborted.
 *
 * Server-side copies use CopyObject, which S3 limits to 5 GiB objects: a larger copy fails with S3's
 * own message (no target here copies on S3: Batch fetches by content address, see plugin/weights).
 */
import fs from 'node:fs';
import type { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { ProviderError } from '../../plugin/errors';
import { countingStream, mapLimit, ObjectNotFoundError, objectUrl, type ByteRange, type ObjectStore, type PutBody, type PutOptions, type StoredObject } from './object-store';

export interface S3StoreOptions {
  readonly bucket: string;
  /** Region of the bucket (`provider.aws.region`); the SDK's own resolution (AWS_REGION, config) when unset. */
  readonly region?: string;
  /** Files larger than this are uploaded in parts (default 64 MiB; S3 takes at most 5 GiB in one PUT). */
  readonly multipartThreshold?: number;
  /** Part size (default 16 MiB, at least 5 MiB on S3; grown so a file needs at most 10,000 parts). */
  readonly partSize?: number;
  /** Parts of one file in flight at once (default 4). */
  readonly partConcurrency?: number;
  /** Keys per listing page (default and S3's maximum: 1000). */
  readonly pageSize?: number;
  /** A client to use instead of one made from the options above. */
  readonly client?: S3Client;
}

const MiB = 1024 * 1024;
const MAX_PARTS = 10_000;
const METADATA_SHA256 = 'sgpu-sha256';

/** The custom S3 endpoint the SDK will use, when the environment names one. */
export function customS3Endpoint(env: NodeJS.ProcessEnv = process.env): string | undefined {
  return env.AWS_ENDPOINT_URL_S3 || env.AWS_ENDPOINT_URL || undefined;
}

export function s3ClientConfig(region: string | undefined, env: NodeJS.ProcessEnv = process.env): S3ClientConfig {
  const custom = customS3Endpoint(env) !== undefined;
  return {
    ...(region ? { region } : {}),
    ...(custom ? { forcePathStyle: true, requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED' } : {}),
  };
}

const hexToBase64 = (hex: string): string => Buffer.from(hex, 'hex').toString('base64');
const base64ToHex = (b64: string): string => Buffer.from(b64, 'base64').toString('hex');
/** The ETag is the MD5 of the body only for single-part uploads (a multipart ETag ends in `-<parts>`). */
const etagMd5 = (etag: string | undefined): string | undefined => {
  const bare = etag?.replace(/"/g, '');
  return bare && /^[0-9a-f]{32}$/.test(bare) ? bare : undefined;
};

function isNotFound(error: unknown): boolean {
  const name = (error as { name?: string } | undefined)?.name;
  return name === 'NoSuchKey' || name === 'NotFound';
}

/**
 * Reads a file range as a stream, reporting each chunk as the SDK pulls it (through a pass-through: a
 * 'data' listener on the file stream itself would start it flowing before the SDK reads it).
 */
function fileStream(file: string, start: number, end: number, onBytes?: (bytes: number) => void): Readable {
  const stream = fs.createReadStream(file, { start, end, highWaterMark: MiB });
  return onBytes ? stream.pipe(countingStream(onBytes)) : stream;
}

export class S3Store implements ObjectStore {
  readonly kind = 's3' as const;
  readonly bucket: string;
  readonly client: S3Client;
  private readonly multipartThreshold: number;
  private readonly partSize: number;
  private readonly partConcurrency: number;
  private readonly pageSize: number;

  constructor(options: S3StoreOptions) {
    this.bucket = options.bucket;
    this.client = options.client ?? new S3Client(s3ClientConfig(options.region));
    this.multipartThreshold = options.multipartThreshold ?? 64 * MiB;
    this.partSize = options.partSize ?? 16 * MiB;
    this.partConcurrency = options.partConcurrency ?? 4;
    this.pageSize = options.pageSize ?? 1000;
  }

  private fail(operation: string, key: string, error: unknown): never {
    if (operation === 'get' && isNotFound(error)) throw new ObjectNotFoundError(objectUrl(this, key));
    const e = error as Error & { $metadata?: { httpStatusCode?: number } };
    const status = e.$metadata?.httpStatusCode ? ` (HTTP ${e.$metadata.httpStatusCode})` : '';
    throw new ProviderError('WEIGHTS_STORE', `S3 ${operation} ${objectUrl(this, key)} failed${status}: ${e.name}: ${e.message}`);
  }

  async list(prefix: string): Promise<StoredObject[]> {
    const objects: StoredObject[] = [];
    let token: string | undefined;
    do {
      const page = await this.client
        .send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, MaxKeys: this.pageSize, ContinuationToken: token }))
        .catch((error: unknown) => this.fail('list', prefix, error));
      for (const o of page.Contents ?? []) {
        objects.push({ key: o.Key!, size: Number(o.Size ?? 0), md5: etagMd5(o.ETag), modified: o.LastModified });
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return objects;
  }

  async put(key: string, body: PutBody, options: PutOptions = {}): Promise<void> {
    const common = {
      Bucket: this.bucket,
      Key: key,
      ContentType: options.contentType ?? 'application/octet-stream',
      Metadata: options.sha256 ? { [METADATA_SHA256]: options.sha256 } : undefined,
    };
    try {
      if (Buffer.isBuffer(body)) {
        await this.client.send(
          new PutObjectCommand({ ...common, Body: body, ContentLength: body.length, ChecksumSHA256: options.sha256 && hexToBase64(options.sha256) }),
        );
        options.onBytes?.(body.length);
      } else if (body.size <= this.multipartThreshold) {
        await this.client.send(
          new PutObjectCommand({
            ...common,
            Body: fileStream(body.file, 0, Math.max(0, body.size - 1), options.onBytes),
            ContentLength: body.size,
            ChecksumSHA256: options.sha256 && hexToBase64(options.sha256),
          }),
        );
      } else {
        await this.putParts(common, body, options.onBytes);
      }
    } catch (error) {
      if (error instanceof ProviderError) throw error;
      this.fail('put', key, error);
    }
  }

  private async putParts(
    common: { Bucket: string; Key: string; ContentType: string; Metadata?: Record<string, string> },
    body: { file: string; size: number },
    onBytes?: (bytes: number) => void,
  ): Promise<void> {
    const partSize = Math.max(this.partSize, Math.ceil(body.size / MAX_PARTS));
    const { UploadId } = await this.client.send(new CreateMultipartUploadCommand(common));
    const ranges = Array.from({ length: Math.ceil(body.size / partSize) }, (_, i) => ({
      number: i + 1,
      start: i * partSize,
      end: Math.min(body.size, (i + 1) * partSize) - 1,
    }));
    try {
      const parts = await mapLimit(ranges, this.partConcurrency, async (range) => {
        const reply = await this.client.send(
          new UploadPartCommand({
            Bucket: common.Bucket,
            Key: common.Key,
            UploadId,
            PartNumber: range.number,
            Body: fileStream(body.file, range.start, range.end, onBytes),
            ContentLength: range.end - range.start + 1,
          }),
        );
        return { PartNumber: range.number, ETag: reply.ETag };
      });
      await this.client.send(
        new CompleteMultipartUploadCommand({ Bucket: common.Bucket, Key: common.Key, UploadId, MultipartUpload: { Parts: parts } }),
      );
    } catch (error) {
      await this.client.send(new AbortMultipartUploadCommand({ Bucket: common.Bucket, Key: common.Key, UploadId })).catch(() => undefined);
      throw error;
    }
  }

  async get(key: string, range?: ByteRange): Promise<Buffer> {
    try {
      const reply = await this.client.send(
        new GetObjectCommand({ Bucket: this.bucket, Key: key, Range: range ? `bytes=${range.start}-${range.end}` : undefined }),
      );
      return Buffer.from(await reply.Body!.transformToByteArray());
    } catch (error) {
      return this.fail('get', key, error);
    }
  }

  async head(key: string): Promise<StoredObject | undefined> {
    try {
      const reply = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key, ChecksumMode: 'ENABLED' }));
      const ownSha = reply.ChecksumSHA256 && reply.ChecksumType !== 'COMPOSITE' ? base64ToHex(reply.ChecksumSHA256) : undefined;
      return {
        key,
        size: Number(reply.ContentLength ?? 0),
        sha256: reply.Metadata?.[METADATA_SHA256] ?? ownSha,
        md5: etagMd5(reply.ETag),
        modified: reply.LastModified,
      };
    } catch (error) {
      if (isNotFound(error)) return undefined;
      return this.fail('head', key, error);
    }
  }

  async copy(from: string, to: string): Promise<void> {
    const source = `${this.bucket}/${from.split('/').map(encodeURIComponent).join('/')}`;
    await this.client.send(new CopyObjectCommand({ Bucket: this.bucket, Key: to, CopySource: source })).catch((error: unknown) => this.fail('copy', from, error));
  }

  async delete(keys: readonly string[]): Promise<void> {
    for (let i = 0; i < keys.length; i += 1000) {
      const batch = keys.slice(i, i + 1000);
      const reply = await this.client
        .send(new DeleteObjectsCommand({ Bucket: this.bucket, Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true } }))
        .catch((error: unknown) => this.fail('delete', batch[0], error));
      const errors = (reply.Errors ?? []).filter((e) => e.Code !== 'NoSuchKey');
      if (errors.length > 0) {
        throw new ProviderError(
          'WEIGHTS_STORE',
          `S3 delete in s3://${this.bucket} failed for ${errors.length} key(s), e.g. ${errors[0].Key}: ${errors[0].Code} ${errors[0].Message}`,
        );
      }
    }
  }
}

export function openS3Store(options: S3StoreOptions): S3Store {
  return new S3Store(options);
}

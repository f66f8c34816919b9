/**
 * Test helper: a loopback fake of the few Cloud Storage JSON API calls `gcs.ts` makes, reached through
 * `STORAGE_EMULATOR_HOST`, recording every request. Not a Cloud Storage server (none can be run here):
 * it answers with the documented resource shapes, computes MD5 and CRC32C of what it stores (so the
 * library's upload validation runs), pages listings `pageSize` items at a time and serves byte ranges.
 *
 *   GET    [/storage/v1]/b/:bucket/o?prefix&maxResults&pageToken         objects.list
 *   GET    [/storage/v1]/b/:bucket/o/:object[?alt=media]                 objects.get (metadata or media)
 *   DELETE [/storage/v1]/b/:bucket/o/:object                             objects.delete
 *   POST   [/storage/v1]/b/:b/o/:src/rewriteTo/b/:b/o/:dst               objects.rewrite
 *   POST   /upload/storage/v1/b/:bucket/o?uploadType=multipart           simple upload, metadata + media
 *   POST   /upload/storage/v1/b/:bucket/o?uploadType=resumable           starts a session (Location)
 *   PUT    /upload/storage/v1/b/:bucket/o?uploadType=resumable&upload_id the session's bytes
 */
import { createHash, randomUUID } from 'node:crypto';
import type http from 'node:http';
import { CRC32C } from '@google-cloud/storage';
import { startServer, type RecordedRequest, type TestServer } from '../registry/fake-registry';

/** Base64 CRC32C, as Cloud Storage reports it. */
function crc32c(data: Buffer): string {
  const crc = new CRC32C();
  crc.update(data);
  return crc.toString();
}

export interface FakeObject {
  readonly name: string;
  readonly data: Buffer;
  readonly contentType: string;
  readonly metadata: Readonly<Record<string, string>>;
  readonly generation: number;
}

interface Session {
  readonly bucket: string;
  readonly resource: { name: string; contentType?: string; metadata?: Record<string, string> };
}

export class FakeGcs {
  readonly requests: RecordedRequest[] = [];
  /** `bucket/name` → object. */
  readonly objects = new Map<string, FakeObject>();
  private readonly sessions = new Map<string, Session>();
  private server?: TestServer;
  private generation = 1;

  constructor(readonly options: { pageSize?: number } = {}) {}

  /** `http://127.0.0.1:<port>`, the value for STORAGE_EMULATOR_HOST. */
  get endpoint(): string {
    return `http://${this.server!.host}`;
  }

  async start(): Promise<this> {
    this.server = await startServer((request, body, response) => {
      this.requests.push({ method: request.method ?? '', url: request.url ?? '', headers: request.headers, body });
      try {
        this.handle(request, body, response);
      } catch (error) {
        this.json(response, 500, { error: { code: 500, message: (error as Error).message } });
      }
    });
    return this;
  }

  async close(): Promise<void> {
    await this.server?.close();
  }

  object(bucket: string, name: string): FakeObject | undefined {
    return this.objects.get(`${bucket}/${name}`);
  }

  private resource(bucket: string, o: FakeObject): Record<string, unknown> {
    return {
      kind: 'storage#object',
      id: `${bucket}/${o.name}/${o.generation}`,
      name: o.name,
      bucket,
      generation: String(o.generation),
      metageneration: '1',
      contentType: o.contentType,
      size: String(o.data.length),
      md5Hash: createHash('md5').update(o.data).digest('base64'),
      crc32c: crc32c(o.data),
      metadata: Object.keys(o.metadata).length > 0 ? o.metadata : undefined,
      updated: new Date().toISOString(),
    };
  }

  private store(bucket: string, resource: Session['resource'], data: Buffer): FakeObject {
    const object: FakeObject = {
      name: resource.name,
      data,
      contentType: resource.contentType ?? 'application/octet-stream',
      metadata: resource.metadata ?? {},
      generation: this.generation++,
    };
    this.objects.set(`${bucket}/${resource.name}`, object);
    return object;
  }

  private json(response: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
    response.writeHead(status, { 'content-type': 'application/json; charset=UTF-8', ...headers });
    response.end(body === undefined ? '' : JSON.stringify(body));
  }

  private notFound(response: http.ServerResponse, what: string): void {
    this.json(response, 404, { error: { code: 404, message: `No such object: ${what}`, errors: [{ reason: 'notFound', message: `No such object: ${what}` }] } });
  }

  private handle(request: http.IncomingMessage, body: Buffer, response: http.ServerResponse): void {
    const url = new URL(request.url ?? '/', 'http://fake');
    const query = url.searchParams;
    const method = request.method ?? 'GET';
    const upload = /^\/upload\/storage\/v1\/b\/([^/]+)\/o$/.exec(url.pathname);
    if (upload) return this.upload(request, decodeURIComponent(upload[1]), query, body, response);

    const path = url.pathname.replace(/^\/storage\/v1/, '');
    const rewrite = /^\/b\/([^/]+)\/o\/([^/]+)\/rewriteTo\/b\/([^/]+)\/o\/([^/]+)$/.exec(path);
    if (rewrite && method === 'POST') {
      const [from, to] = [decodeURIComponent(rewrite[2]), decodeURIComponent(rewrite[4])];
      const source = this.object(decodeURIComponent(rewrite[1]), from);
      if (!source) return this.notFound(response, from);
      const copied = this.store(decodeURIComponent(rewrite[3]), { name: to, contentType: source.contentType, metadata: { ...source.metadata } }, source.data);
      const size = String(source.data.length);
      return this.json(response, 200, { kind: 'storage#rewriteResponse', totalBytesRewritten: size, objectSize: size, done: true, resource: this.resource(decodeURIComponent(rewrite[3]), copied) });
    }
    const one = /^\/b\/([^/]+)\/o\/([^/]+)$/.exec(path);
    if (one) {
      const [bucket, name] = [decodeURIComponent(one[1]), decodeURIComponent(one[2])];
      const object = this.object(bucket, name);
      if (!object) return this.notFound(response, name);
      if (method === 'DELETE') {
        this.objects.delete(`${bucket}/${name}`);
        response.writeHead(204).end();
        return;
      }
      if (query.get('alt') === 'media') return this.media(request, bucket, object, response);
      return this.json(response, 200, this.resource(bucket, object));
    }
    const list = /^\/b\/([^/]+)\/o$/.exec(path);
    if (list && method === 'GET') {
      const bucket = decodeURIComponent(list[1]);
      const prefix = query.get('prefix') ?? '';
      const names = [...this.objects.values()]
        .filter((o) => this.objects.get(`${bucket}/${o.name}`) === o && o.name.startsWith(prefix))
        .map((o) => o.name)
        .sort();
      const start = Number(query.get('pageToken') ?? 0);
      const size = Math.min(Number(query.get('maxResults') ?? 1000), this.options.pageSize ?? 1000);
      const page = names.slice(start, start + size);
      return this.json(response, 200, {
        kind: 'storage#objects',
        items: page.map((name) => this.resource(bucket, this.object(bucket, name)!)),
        nextPageToken: start + size < names.length ? String(start + size) : undefined,
      });
    }
    this.json(response, 400, { error: { code: 400, message: `fake-gcs: unsupported ${method} ${url.pathname}` } });
  }

  private media(request: http.IncomingMessage, bucket: string, object: FakeObject, response: http.ServerResponse): void {
    const hash = `crc32c=${crc32c(object.data)},md5=${createHash('md5').update(object.data).digest('base64')}`;
    const range = /^bytes=(\d+)-(\d*)$/.exec(request.headers.range ?? '');
    if (range) {
      const start = Number(range[1]);
      const end = range[2] ? Math.min(Number(range[2]), object.data.length - 1) : object.data.length - 1;
      response.writeHead(206, {
        'content-type': object.contentType,
        'content-range': `bytes ${start}-${end}/${object.data.length}`,
        'content-length': String(end - start + 1),
        'x-goog-hash': hash,
        'x-goog-generation': String(object.generation),
      });
      response.end(object.data.subarray(start, end + 1));
      return;
    }
    response.writeHead(200, { 'content-type': object.contentType, 'content-length': String(object.data.length), 'x-goog-hash': hash, 'x-goog-generation': String(object.generation) });
    response.end(object.data);
    void bucket;
  }

  private upload(request: http.IncomingMessage, bucket: string, query: URLSearchParams, body: Buffer, response: http.ServerResponse): void {
    const type = query.get('uploadType');
    if (type === 'multipart' && request.method === 'POST') {
      const boundary = /boundary="?([^";]+)"?/.exec(request.headers['content-type'] ?? '')?.[1];
      if (!boundary) return this.json(response, 400, { error: { code: 400, message: 'multipart upload without a boundary' } });
      const parts = splitMultipart(body, boundary);
      if (parts.length !== 2) return this.json(response, 400, { error: { code: 400, message: `expected 2 parts, got ${parts.length}` } });
      const resource = JSON.parse(parts[0].toString('utf8')) as Session['resource'];
      resource.name ??= query.get('name') ?? '';
      return this.json(response, 200, this.resource(bucket, this.store(bucket, resource, parts[1])));
    }
    if (type === 'resumable' && request.method === 'POST') {
      const resource = (body.length > 0 ? JSON.parse(body.toString('utf8')) : {}) as Session['resource'];
      resource.name ??= query.get('name') ?? '';
      const id = randomUUID();
      this.sessions.set(id, { bucket, resource });
      const location = `http://${request.headers.host}/upload/storage/v1/b/${encodeURIComponent(bucket)}/o?uploadType=resumable&upload_id=${id}`;
      return this.json(response, 200, undefined, { location });
    }
    if (type === 'resumable' && request.method === 'PUT') {
      const session = this.sessions.get(query.get('upload_id') ?? '');
      if (!session) return this.json(response, 404, { error: { code: 404, message: 'no such upload session' } });
      this.sessions.delete(query.get('upload_id')!);
      return this.json(response, 200, this.resource(session.bucket, this.store(session.bucket, session.resource, body)));
    }
    this.json(response, 400, { error: { code: 400, message: `fake-gcs: unsupported upload ${request.method} ${type}` } });
  }
}

/** The parts' bodies (after each part's headers) of a multipart/related body. */
function splitMultipart(body: Buffer, boundary: string): Buffer[] {
  const delimiter = Buffer.from(`--${boundary}`);
  const parts: Buffer[] = [];
  let at = body.indexOf(delimiter);
  while (at !== -1) {
    const start = at + delimiter.length;
    if (body.subarray(start, start + 2).toString() === '--') break;
    const next = body.indexOf(delimiter, start);
    if (next === -1) break;
    const part = body.subarray(start, next);
    const headerEnd = part.indexOf('\r\n\r\n');
    // The part's body ends before the CRLF that precedes the next delimiter.
    parts.push(part.subarray(headerEnd + 4, part.length - 2));
    at = next;
  }
  return parts;
}

/**
 * Test helper: an in-memory OCI Distribution registry on 127.0.0.1 (port 0), enough for the client's
 * unit tests — blobs (HEAD/GET, monolithic and chunked uploads), manifests (HEAD/GET/PUT by tag or
 * digest) and an optional auth check — recording every request it sees. Not used outside tests.
 */
import { createHash, randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RecordedRequest {
  readonly method: string;
  /** Path and query, as sent. */
  readonly url: string;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: Buffer;
}

/** Answers `undefined` to let a request through, or the `WWW-Authenticate` challenge of a 401. */
export type AuthCheck = (request: http.IncomingMessage) => string | undefined;

export interface TestServer {
  readonly port: number;
  /** `127.0.0.1:<port>` */
  readonly host: string;
  close(): Promise<void>;
}

const digestOf = (data: Buffer): string => `sha256:${createHash('sha256').update(data).digest('hex')}`;

function readBody(request: http.IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => resolve(Buffer.concat(chunks)));
    request.on('error', reject);
  });
}

/** Starts an HTTP server on 127.0.0.1, port 0; `close()` also drops kept-alive connections. */
export async function startServer(handler: (request: http.IncomingMessage, body: Buffer, response: http.ServerResponse) => void): Promise<TestServer> {
  const server = http.createServer((request, response) => {
    readBody(request).then(
      (body) => handler(request, body, response),
      () => response.destroy(),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    host: `127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

interface StoredManifest {
  readonly body: Buffer;
  readonly mediaType: string;
}

interface Upload {
  data: Buffer;
  state: number;
}

function sendError(response: http.ServerResponse, status: number, code: string, message: string): void {
  response.writeHead(status, { 'content-type': 'application/json' });
  response.end(JSON.stringify({ errors: [{ code, message }] }));
}

export class FakeRegistry {
  /** Every request, in order (including refused ones). */
  readonly requests: RecordedRequest[] = [];
  /** Blobs by `<repository>@<digest>`. */
  readonly blobs = new Map<string, Buffer>();
  /** Manifests by `<repository>:<tag>` and `<repository>@<digest>`. */
  readonly manifests = new Map<string, StoredManifest>();
  /** Digests whose GET serves other bytes than the blob's. */
  readonly corruptBlobs = new Set<string>();
  /** Optional auth: a 401 with this challenge unless it lets the request through. */
  auth: AuthCheck | undefined;
  private readonly uploads = new Map<string, Upload>();
  private server: TestServer | undefined;

  async start(): Promise<this> {
    this.server = await startServer((request, body, response) => this.handle(request, body, response));
    return this;
  }

  /** `127.0.0.1:<port>`: the registry name a client is given. */
  get host(): string {
    if (!this.server) throw new Error('the fake registry is not started');
    return this.server.host;
  }

  async close(): Promise<void> {
    await this.server?.close();
    this.server = undefined;
  }

  /** Requests as `METHOD path` (query left off), for assertions on what the client did. */
  calls(): string[] {
    return this.requests.map((r) => `${r.method} ${r.url.split('?')[0]}`);
  }

  seedBlob(repository: string, data: Buffer): string {
    const digest = digestOf(data);
    this.blobs.set(`${repository}@${digest}`, data);
    return digest;
  }

  seedManifest(repository: string, tag: string | undefined, body: Buffer, mediaType: string): string {
    const digest = digestOf(body);
    this.manifests.set(`${repository}@${digest}`, { body, mediaType });
    if (tag) this.manifests.set(`${repository}:${tag}`, { body, mediaType });
    return digest;
  }

  manifest(repository: string, reference: string): StoredManifest | undefined {
    return this.manifests.get(reference.startsWith('sha256:') ? `${repository}@${reference}` : `${repository}:${reference}`);
  }

  private handle(request: http.IncomingMessage, body: Buffer, response: http.ServerResponse): void {
    const method = request.method ?? 'GET';
    const rawUrl = request.url ?? '/';
    this.requests.push({ method, url: rawUrl, headers: request.headers, body });
    const challenge = this.auth?.(request);
    if (challenge !== undefined) {
      response.writeHead(401, { 'www-authenticate': challenge, 'content-type': 'application/json' });
      response.end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'authentication required' }] }));
      return;
    }
    const url = new URL(rawUrl, 'http://fake');
    const pathname = decodeURIComponent(url.pathname);
    let match: RegExpExecArray | null;

    if (pathname === '/v2/' && method === 'GET') {
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end('{}');
      return;
    }
    if ((match = /^\/v2\/(.+)\/blobs\/uploads\/$/.exec(pathname)) && method === 'POST') {
      const id = randomUUID();
      this.uploads.set(id, { data: Buffer.alloc(0), state: 0 });
      response.writeHead(202, { location: `/v2/${match[1]}/blobs/uploads/${id}?_state=s0`, 'docker-upload-uuid': id, 'content-length': '0' });
      response.end();
      return;
    }
    if ((match = /^\/v2\/(.+)\/blobs\/uploads\/([^/]+)$/.exec(pathname))) {
      const [, repository, id] = match;
      const upload = this.uploads.get(id);
      if (!upload) return sendError(response, 404, 'BLOB_UPLOAD_UNKNOWN', `no upload ${id}`);
      if (url.searchParams.get('_state') !== `s${upload.state}`) {
        return sendError(response, 400, 'BLOB_UPLOAD_INVALID', `upload state "${url.searchParams.get('_state')}" is stale or missing`);
      }
      if (method === 'PATCH') {
        const range = /^(\d+)-(\d+)$/.exec(String(request.headers['content-range'] ?? ''));
        if (!range || Number(range[1]) !== upload.data.length || Number(range[2]) !== upload.data.length + body.length - 1) {
          return sendError(response, 416, 'BLOB_UPLOAD_INVALID', `bad Content-Range ${request.headers['content-range']}`);
        }
        upload.data = Buffer.concat([upload.data, body]);
        upload.state += 1;
        response.writeHead(202, { location: `/v2/${repository}/blobs/uploads/${id}?_state=s${upload.state}`, range: `0-${upload.data.length - 1}`, 'content-length': '0' });
        response.end();
        return;
      }
      if (method === 'PUT') {
        const data = Buffer.concat([upload.data, body]);
        const digest = digestOf(data);
        if (url.searchParams.get('digest') !== digest) {
          return sendError(response, 400, 'DIGEST_INVALID', `digest ${url.searchParams.get('digest')} does not match the uploaded ${digest}`);
        }
        this.uploads.delete(id);
        this.blobs.set(`${repository}@${digest}`, data);
        response.writeHead(201, { location: `/v2/${repository}/blobs/${digest}`, 'docker-content-digest': digest, 'content-length': '0' });
        response.end();
        return;
      }
    }
    if ((match = /^\/v2\/(.+)\/blobs\/(sha256:[0-9a-f]{64})$/.exec(pathname)) && (method === 'HEAD' || method === 'GET')) {
      const [, repository, digest] = match;
      const blob = this.blobs.get(`${repository}@${digest}`);
      if (!blob) return sendError(response, 404, 'BLOB_UNKNOWN', `blob ${digest} unknown`);
      const served = this.corruptBlobs.has(digest) ? Buffer.concat([blob, Buffer.from('corrupted')]) : blob;
      response.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(served.length), 'docker-content-digest': digest });
      response.end(method === 'GET' ? served : undefined);
      return;
    }
    if ((match = /^\/v2\/(.+)\/manifests\/([^/]+)$/.exec(pathname))) {
      const [, repository, reference] = match;
      if (method === 'PUT') {
        const mediaType = String(request.headers['content-type'] ?? '');
        const digest = this.seedManifest(repository, reference.startsWith('sha256:') ? undefined : reference, body, mediaType);
        response.writeHead(201, { location: `/v2/${repository}/manifests/${digest}`, 'docker-content-digest': digest, 'content-length': '0' });
        response.end();
        return;
      }
      if (method === 'HEAD' || method === 'GET') {
        const stored = this.manifest(repository, reference);
        if (!stored) return sendError(response, 404, 'MANIFEST_UNKNOWN', `manifest ${reference} unknown`);
        response.writeHead(200, { 'content-type': stored.mediaType, 'content-length': String(stored.body.length), 'docker-content-digest': digestOf(stored.body) });
        response.end(method === 'GET' ? stored.body : undefined);
        return;
      }
    }
    sendError(response, 404, 'UNSUPPORTED', `${method} ${pathname} is not implemented by the fake registry`);
  }
}

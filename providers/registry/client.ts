/**
 * A small OCI Distribution client: enough to read a base image and push an image made of blobs that are
 * mostly there already. Every blob is HEADed first and uploaded only when missing — monolithic
 * (POST, then one PUT with the body) or chunked (POST, PATCH per chunk with Content-Range, closing PUT)
 * where the registry supports it (Artifact Registry and ECR do not: they always get monolithic).
 *
 * Auth follows the challenge the registry answers with: none, Basic, or the Bearer token flow (the
 * realm from `WWW-Authenticate`, scope `repository:<name>:pull,push`, Basic credentials at the realm).
 */
import { createHash } from 'node:crypto';
import { findCredentials, ecrRegion, isGoogleRegistry, type CredentialSource, type Credentials, DEFAULT_SOURCES } from './credentials';
import { registryBaseUrl } from './reference';

export const MEDIA = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
} as const;

const ACCEPT_MANIFESTS = [MEDIA.ociManifest, MEDIA.ociIndex, MEDIA.dockerManifest, MEDIA.dockerList].join(', ');

export interface Descriptor {
  readonly mediaType: string;
  readonly digest: string;
  readonly size: number;
  readonly platform?: { readonly architecture: string; readonly os: string; readonly variant?: string };
  readonly annotations?: Record<string, string>;
}

export interface ImageManifest {
  readonly schemaVersion: 2;
  readonly mediaType?: string;
  readonly config: Descriptor;
  readonly layers: readonly Descriptor[];
  readonly annotations?: Record<string, string>;
}

interface ImageIndex {
  readonly schemaVersion: 2;
  readonly mediaType?: string;
  readonly manifests: readonly Descriptor[];
}

export type RegistryErrorCode = 'UNREACHABLE' | 'AUTH_REFUSED' | 'NOT_FOUND' | 'PROTOCOL';

export class RegistryError extends Error {
  override readonly name = 'RegistryError';
  constructor(
    readonly code: RegistryErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export interface UploadStats {
  blobsUploaded: number;
  bytesUploaded: number;
  blobsSkipped: number;
}

export interface RegistryClientOptions {
  /** Where credentials come from; default: docker config, Google, ECR. */
  readonly credentials?: readonly CredentialSource[];
  /** Blobs larger than this go up in chunks (where the registry supports it); default 16 MiB. */
  readonly chunkSize?: number;
  /** Platform to pick from a manifest list; default linux/amd64. */
  readonly platform?: { readonly os: string; readonly architecture: string };
}

export const sha256 = (data: Uint8Array): string => `sha256:${createHash('sha256').update(data).digest('hex')}`;

function parseChallenge(header: string): { scheme: string; params: Record<string, string> } {
  const space = header.indexOf(' ');
  const scheme = (space < 0 ? header : header.slice(0, space)).toLowerCase();
  const params: Record<string, string> = {};
  for (const match of header.slice(space + 1).matchAll(/([a-zA-Z_]+)="([^"]*)"/g)) params[match[1]] = match[2];
  return { scheme, params };
}

export class RegistryClient {
  readonly stats: UploadStats = { blobsUploaded: 0, bytesUploaded: 0, blobsSkipped: 0 };
  private readonly base: string;
  private readonly authorization = new Map<string, string>();
  private credentials: Promise<Credentials | undefined> | undefined;
  private readonly chunked: boolean;

  constructor(
    readonly registry: string,
    private readonly options: RegistryClientOptions = {},
  ) {
    this.base = registryBaseUrl(registry);
    this.chunked = !isGoogleRegistry(registry) && !ecrRegion(registry);
  }

  /** The digest of a manifest, or undefined when the tag or digest is not in the repository. */
  async manifestDigest(repository: string, reference: string): Promise<string | undefined> {
    const response = await this.request(repository, 'HEAD', `/v2/${repository}/manifests/${reference}`, { headers: { accept: ACCEPT_MANIFESTS } });
    if (response.status === 404) return undefined;
    await this.expect(response, [200], `HEAD manifest ${repository}:${reference}`);
    return response.headers.get('docker-content-digest') ?? undefined;
  }

  /** Reads an image manifest; a manifest list or index resolves to the configured platform's entry. */
  async getManifest(repository: string, reference: string): Promise<{ manifest: ImageManifest; digest: string; mediaType: string }> {
    const { body, mediaType } = await this.getManifestRaw(repository, reference);
    const parsed = JSON.parse(body.toString('utf8')) as ImageManifest | ImageIndex;
    if ('manifests' in parsed) {
      const want = this.options.platform ?? { os: 'linux', architecture: 'amd64' };
      const entry = parsed.manifests.find((m) => m.platform?.os === want.os && m.platform?.architecture === want.architecture);
      if (!entry) {
        throw new RegistryError('NOT_FOUND', `${this.registry}/${repository}:${reference} has no image for ${want.os}/${want.architecture}`);
      }
      return this.getManifest(repository, entry.digest);
    }
    return { manifest: parsed, digest: sha256(body), mediaType: parsed.mediaType ?? mediaType };
  }

  async getBlob(repository: string, digest: string): Promise<Buffer> {
    const response = await this.request(repository, 'GET', `/v2/${repository}/blobs/${digest}`);
    await this.expect(response, [200], `GET blob ${digest}`, true);
    const data = Buffer.from(await response.arrayBuffer());
    if (sha256(data) !== digest) throw new RegistryError('PROTOCOL', `blob ${digest} from ${this.registry} does not match its digest`);
    return data;
  }

  async hasBlob(repository: string, digest: string): Promise<boolean> {
    const response = await this.request(repository, 'HEAD', `/v2/${repository}/blobs/${digest}`);
    if (response.status === 404) return false;
    await this.expect(response, [200], `HEAD blob ${digest}`);
    return true;
  }

  /** Uploads a blob unless the repository has it; returns its descriptor fields and whether it moved. */
  async pushBlob(repository: string, data: Buffer): Promise<{ digest: string; size: number; uploaded: boolean }> {
    const digest = sha256(data);
    if (await this.hasBlob(repository, digest)) {
      this.stats.blobsSkipped += 1;
      return { digest, size: data.length, uploaded: false };
    }
    const start = await this.request(repository, 'POST', `/v2/${repository}/blobs/uploads/`, { body: new Uint8Array(0) });
    await this.expect(start, [202], `start upload to ${repository}`);
    let location = this.location(start);
    const chunkSize = this.options.chunkSize ?? 16 * 1024 * 1024;
    if (this.chunked && data.length > chunkSize) {
      for (let offset = 0; offset < data.length; offset += chunkSize) {
        const chunk = data.subarray(offset, Math.min(data.length, offset + chunkSize));
        const patch = await this.request(repository, 'PATCH', location, {
          headers: { 'content-type': 'application/octet-stream', 'content-range': `${offset}-${offset + chunk.length - 1}` },
          body: new Uint8Array(chunk),
        });
        await this.expect(patch, [202], `upload chunk ${offset} of ${digest}`);
        location = this.location(patch);
      }
      const close = await this.request(repository, 'PUT', withDigest(location, digest), { body: new Uint8Array(0) });
      await this.expect(close, [201], `finish upload of ${digest}`);
    } else {
      const put = await this.request(repository, 'PUT', withDigest(location, digest), {
        headers: { 'content-type': 'application/octet-stream' },
        body: new Uint8Array(data),
      });
      await this.expect(put, [201], `upload ${digest}`);
    }
    this.stats.blobsUploaded += 1;
    this.stats.bytesUploaded += data.length;
    return { digest, size: data.length, uploaded: true };
  }

  /** PUTs a manifest under a tag; returns its digest. */
  async putManifest(repository: string, tag: string, manifest: Buffer, mediaType: string): Promise<string> {
    const response = await this.request(repository, 'PUT', `/v2/${repository}/manifests/${tag}`, {
      headers: { 'content-type': mediaType },
      body: new Uint8Array(manifest),
    });
    await this.expect(response, [201], `PUT manifest ${repository}:${tag}`);
    this.stats.bytesUploaded += manifest.length;
    return response.headers.get('docker-content-digest') ?? sha256(manifest);
  }

  private async getManifestRaw(repository: string, reference: string): Promise<{ body: Buffer; mediaType: string }> {
    const response = await this.request(repository, 'GET', `/v2/${repository}/manifests/${reference}`, { headers: { accept: ACCEPT_MANIFESTS } });
    if (response.status === 404) {
      await response.arrayBuffer();
      throw new RegistryError('NOT_FOUND', `${this.registry}/${repository}:${reference} does not exist`);
    }
    await this.expect(response, [200], `GET manifest ${repository}:${reference}`, true);
    return { body: Buffer.from(await response.arrayBuffer()), mediaType: response.headers.get('content-type') ?? MEDIA.ociManifest };
  }

  private location(response: Response): string {
    const location = response.headers.get('location');
    if (!location) throw new RegistryError('PROTOCOL', `${this.registry} started an upload without a Location`);
    return location;
  }

  /** One request, answering the registry's auth challenge once if it has one. */
  private async request(repository: string, method: string, pathOrUrl: string, init: { headers?: Record<string, string>; body?: Uint8Array } = {}): Promise<Response> {
    const url = new URL(pathOrUrl, this.base);
    const send = async (): Promise<Response> => {
      const headers: Record<string, string> = { ...init.headers };
      const auth = this.authorization.get(repository);
      if (auth) headers.authorization = auth;
      try {
        return await fetch(url, { method, headers, body: init.body, redirect: 'follow' });
      } catch (error) {
        const cause = (error as { cause?: { code?: string; message?: string } }).cause;
        const reason = cause?.code && cause.code.startsWith('UND_ERR') ? `${cause.code}: ${cause.message}` : (cause?.code ?? cause?.message ?? (error as Error).message);
        throw new RegistryError('UNREACHABLE', `registry ${this.registry} is unreachable at ${this.base} (${reason})`);
      }
    };
    let response = await send();
    if (response.status === 401 && !this.authorization.has(repository)) {
      const challenge = response.headers.get('www-authenticate') ?? '';
      await response.arrayBuffer();
      this.authorization.set(repository, await this.authorize(repository, challenge));
      response = await send();
    }
    if (response.status === 401) {
      await response.arrayBuffer();
      const credentials = await this.credentialsFor();
      throw new RegistryError(
        'AUTH_REFUSED',
        credentials
          ? `registry ${this.registry} refused the credentials of user "${credentials.username}" (from ${credentials.source}) for ${repository}`
          : `registry ${this.registry} needs credentials for ${repository}: run "docker login ${this.registry}" (or its cloud's login)`,
      );
    }
    return response;
  }

  private credentialsFor(): Promise<Credentials | undefined> {
    this.credentials ??= findCredentials(this.registry, this.options.credentials ?? DEFAULT_SOURCES);
    return this.credentials;
  }

  private async authorize(repository: string, challenge: string): Promise<string> {
    const credentials = await this.credentialsFor();
    const basic = credentials ? `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64')}` : undefined;
    const { scheme, params } = parseChallenge(challenge);
    if (scheme === 'basic') {
      if (!basic) throw new RegistryError('AUTH_REFUSED', `registry ${this.registry} needs a user and password: run "docker login ${this.registry}"`);
      return basic;
    }
    if (scheme !== 'bearer' || !params.realm) throw new RegistryError('PROTOCOL', `registry ${this.registry} sent an auth challenge this client does not speak: ${challenge.split(' ')[0]}`);
    const realm = new URL(params.realm);
    if (params.service) realm.searchParams.set('service', params.service);
    realm.searchParams.set('scope', `repository:${repository}:pull,push`);
    let reply: Response;
    try {
      reply = await fetch(realm, { headers: basic ? { authorization: basic } : {} });
    } catch (error) {
      throw new RegistryError('UNREACHABLE', `the token service of ${this.registry} (${realm.origin}) is unreachable: ${(error as Error).message}`);
    }
    if (reply.status === 401 || reply.status === 403) {
      await reply.arrayBuffer();
      throw new RegistryError(
        'AUTH_REFUSED',
        credentials
          ? `the token service of ${this.registry} refused user "${credentials.username}" (from ${credentials.source})`
          : `registry ${this.registry} needs credentials for ${repository}: run "docker login ${this.registry}"`,
      );
    }
    if (!reply.ok) throw new RegistryError('PROTOCOL', `the token service of ${this.registry} answered ${reply.status}`);
    const body = (await reply.json()) as { token?: string; access_token?: string };
    const token = body.token ?? body.access_token;
    if (!token) throw new RegistryError('PROTOCOL', `the token service of ${this.registry} returned no token`);
    return `Bearer ${token}`;
  }

  /** Throws unless the status is one of `ok`; consumes the body unless the caller reads it (`keepBody`). */
  private async expect(response: Response, ok: readonly number[], what: string, keepBody = false): Promise<void> {
    if (ok.includes(response.status)) {
      if (!keepBody) await response.arrayBuffer();
      return;
    }
    const text = await response.text().catch(() => '');
    let detail = text.slice(0, 300);
    try {
      const errors = (JSON.parse(text) as { errors?: Array<{ code: string; message: string }> }).errors;
      if (errors?.length) detail = errors.map((e) => `${e.code}: ${e.message}`).join('; ');
    } catch {
      // not JSON: keep the text
    }
    throw new RegistryError(response.status === 404 ? 'NOT_FOUND' : 'PROTOCOL', `${what} on ${this.registry} failed with HTTP ${response.status}${detail ? ` (${detail})` : ''}`);
  }
}

function withDigest(location: string, digest: string): string {
  return `${location}${location.includes('?') ? '&' : '?'}digest=${encodeURIComponent(digest)}`;
}

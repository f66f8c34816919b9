import assert from 'node:assert/strict';
import type http from 'node:http';
import { MEDIA, RegistryClient, RegistryError, sha256 } from './client';
import type { CredentialSource } from './credentials';
import { FakeRegistry, startServer, type TestServer } from './fake-registry';

const REPO = 'team/app';
const USER = 'alice';
const PASSWORD = 's3cret-Pa55';

const fakeSource =
  (username = USER, password = PASSWORD): CredentialSource =>
  async () => ({ username, password, source: 'the test credential source' });

const basic = (username: string, password: string): string => `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;

async function registryError(promise: Promise<unknown>): Promise<RegistryError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof RegistryError, `expected a RegistryError, got ${String(error)}`);
    return error;
  }
  assert.fail('expected a RegistryError');
}

function json(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value));
}

describe('RegistryClient', function () {
  this.timeout(10_000);
  let registry: FakeRegistry;

  beforeEach(async () => {
    registry = await new FakeRegistry().start();
  });

  afterEach(async () => {
    await registry.close();
  });

  const client = (options: ConstructorParameters<typeof RegistryClient>[1] = {}): RegistryClient =>
    new RegistryClient(registry.host, { credentials: [], ...options });

  describe('pushBlob', () => {
    it('HEADs first and skips a blob the repository has, counting it as skipped', async () => {
      const data = Buffer.from('already there');
      const digest = registry.seedBlob(REPO, data);
      const c = client();
      const result = await c.pushBlob(REPO, data);
      assert.deepEqual(result, { digest, size: data.length, uploaded: false });
      assert.deepEqual(registry.calls(), [`HEAD /v2/${REPO}/blobs/${digest}`]);
      assert.deepEqual(c.stats, { blobsUploaded: 0, bytesUploaded: 0, blobsSkipped: 1 });
    });

    it('uploads a missing blob monolithically: POST, then one PUT with the body, keeping the Location query', async () => {
      const data = Buffer.from('a new blob of some bytes');
      const digest = sha256(data);
      const c = client();
      const result = await c.pushBlob(REPO, data);
      assert.deepEqual(result, { digest, size: data.length, uploaded: true });
      const [head, post, put, ...rest] = registry.requests;
      assert.deepEqual(rest, []);
      assert.equal(`${head.method} ${head.url}`, `HEAD /v2/${REPO}/blobs/${digest}`);
      assert.equal(`${post.method} ${post.url}`, `POST /v2/${REPO}/blobs/uploads/`);
      assert.equal(put.method, 'PUT');
      const putUrl = new URL(put.url, 'http://x');
      assert.match(putUrl.pathname, new RegExp(`^/v2/${REPO}/blobs/uploads/[^/]+$`));
      assert.equal(putUrl.searchParams.get('_state'), 's0', 'the query of the Location must be kept');
      assert.equal(putUrl.searchParams.get('digest'), digest);
      assert.deepEqual(put.body, data);
      assert.deepEqual(registry.blobs.get(`${REPO}@${digest}`), data);
      assert.deepEqual(c.stats, { blobsUploaded: 1, bytesUploaded: data.length, blobsSkipped: 0 });
    });

    it('uploads in chunks when the blob is larger than chunkSize: PATCHes with inclusive Content-Range, then a closing PUT', async () => {
      const data = Buffer.from('0123456789abcdefghijKLMNO'); // 25 bytes
      const digest = sha256(data);
      const c = client({ chunkSize: 10 });
      const result = await c.pushBlob(REPO, data);
      assert.equal(result.uploaded, true);
      assert.deepEqual(
        registry.requests.map((r) => r.method),
        ['HEAD', 'POST', 'PATCH', 'PATCH', 'PATCH', 'PUT'],
      );
      const patches = registry.requests.filter((r) => r.method === 'PATCH');
      assert.deepEqual(
        patches.map((p) => p.headers['content-range']),
        ['0-9', '10-19', '20-24'],
      );
      assert.deepEqual(
        patches.map((p) => p.body.toString()),
        ['0123456789', 'abcdefghij', 'KLMNO'],
      );
      // Each request goes to the Location the previous answer gave (the fake refuses a stale one).
      assert.deepEqual(
        registry.requests.slice(2).map((r) => new URL(r.url, 'http://x').searchParams.get('_state')),
        ['s0', 's1', 's2', 's3'],
      );
      const close = registry.requests[5];
      assert.equal(close.body.length, 0);
      assert.equal(new URL(close.url, 'http://x').searchParams.get('digest'), digest);
      assert.deepEqual(registry.blobs.get(`${REPO}@${digest}`), data);
      assert.deepEqual(c.stats, { blobsUploaded: 1, bytesUploaded: 25, blobsSkipped: 0 });
    });

    it('uploads a blob of exactly chunkSize bytes in one PUT', async () => {
      const data = Buffer.from('0123456789');
      await client({ chunkSize: 10 }).pushBlob(REPO, data);
      assert.deepEqual(
        registry.requests.map((r) => r.method),
        ['HEAD', 'POST', 'PUT'],
      );
    });
  });

  describe('manifests', () => {
    const amd64 = json({ schemaVersion: 2, mediaType: MEDIA.ociManifest, config: { mediaType: MEDIA.ociConfig, digest: sha256(Buffer.from('amd')), size: 3 }, layers: [] });
    const arm64 = json({ schemaVersion: 2, mediaType: MEDIA.ociManifest, config: { mediaType: MEDIA.ociConfig, digest: sha256(Buffer.from('arm')), size: 3 }, layers: [] });

    it('resolves an OCI index to its linux/amd64 manifest and fetches that one', async () => {
      const amdDigest = registry.seedManifest(REPO, undefined, amd64, MEDIA.ociManifest);
      const armDigest = registry.seedManifest(REPO, undefined, arm64, MEDIA.ociManifest);
      const index = json({
        schemaVersion: 2,
        mediaType: MEDIA.ociIndex,
        manifests: [
          { mediaType: MEDIA.ociManifest, digest: armDigest, size: arm64.length, platform: { os: 'linux', architecture: 'arm64' } },
          { mediaType: MEDIA.ociManifest, digest: amdDigest, size: amd64.length, platform: { os: 'linux', architecture: 'amd64' } },
        ],
      });
      registry.seedManifest(REPO, 'multi', index, MEDIA.ociIndex);
      const result = await client().getManifest(REPO, 'multi');
      assert.equal(result.digest, amdDigest);
      assert.equal(result.mediaType, MEDIA.ociManifest);
      assert.equal(result.manifest.config.digest, sha256(Buffer.from('amd')));
      assert.deepEqual(registry.calls(), [`GET /v2/${REPO}/manifests/multi`, `GET /v2/${REPO}/manifests/${amdDigest}`]);
      assert.match(String(registry.requests[0].headers.accept), /application\/vnd\.oci\.image\.index\.v1\+json/);

      const arm = await client({ platform: { os: 'linux', architecture: 'arm64' } }).getManifest(REPO, 'multi');
      assert.equal(arm.digest, armDigest);
    });

    it('reads a plain manifest by tag, with the media type it declares', async () => {
      const digest = registry.seedManifest(REPO, 'v1', amd64, MEDIA.ociManifest);
      const result = await client().getManifest(REPO, 'v1');
      assert.equal(result.digest, digest);
      assert.equal(result.mediaType, MEDIA.ociManifest);
      assert.deepEqual(result.manifest.layers, []);
    });

    it('fails with NOT_FOUND when a manifest list has no linux/amd64 image', async () => {
      const armDigest = registry.seedManifest(REPO, undefined, arm64, MEDIA.dockerManifest);
      const list = json({
        schemaVersion: 2,
        mediaType: MEDIA.dockerList,
        manifests: [{ mediaType: MEDIA.dockerManifest, digest: armDigest, size: arm64.length, platform: { os: 'linux', architecture: 'arm64' } }],
      });
      registry.seedManifest(REPO, 'armonly', list, MEDIA.dockerList);
      const error = await registryError(client().getManifest(REPO, 'armonly'));
      assert.equal(error.code, 'NOT_FOUND');
      assert.match(error.message, /linux\/amd64/);
      assert.equal(registry.requests.length, 1, 'no platform manifest is fetched');
    });

    it('fails with NOT_FOUND for a tag that does not exist', async () => {
      const error = await registryError(client().getManifest(REPO, 'nope'));
      assert.equal(error.code, 'NOT_FOUND');
      assert.match(error.message, /team\/app:nope/);
    });

    it('manifestDigest answers the digest of an existing tag, and undefined for a missing one', async () => {
      const digest = registry.seedManifest(REPO, 'env-1', amd64, MEDIA.ociManifest);
      const c = client();
      assert.equal(await c.manifestDigest(REPO, 'env-1'), digest);
      assert.equal(await c.manifestDigest(REPO, 'env-2'), undefined);
      assert.deepEqual(
        registry.requests.map((r) => r.method),
        ['HEAD', 'HEAD'],
      );
    });

    it('putManifest stores the manifest under the tag with its media type and answers its digest', async () => {
      const digest = await client().putManifest(REPO, 'v2', amd64, MEDIA.ociManifest);
      assert.equal(digest, sha256(amd64));
      assert.deepEqual(registry.manifest(REPO, 'v2'), { body: amd64, mediaType: MEDIA.ociManifest });
    });
  });

  describe('getBlob', () => {
    it('returns the bytes of a blob', async () => {
      const data = Buffer.from('config bytes');
      const digest = registry.seedBlob(REPO, data);
      assert.deepEqual(await client().getBlob(REPO, digest), data);
    });

    it('fails with PROTOCOL when the bytes served do not match the digest', async () => {
      const digest = registry.seedBlob(REPO, Buffer.from('config bytes'));
      registry.corruptBlobs.add(digest);
      const error = await registryError(client().getBlob(REPO, digest));
      assert.equal(error.code, 'PROTOCOL');
      assert.match(error.message, /does not match its digest/);
    });

    it('fails with NOT_FOUND for a missing blob', async () => {
      const error = await registryError(client().getBlob(REPO, sha256(Buffer.from('missing'))));
      assert.equal(error.code, 'NOT_FOUND');
    });
  });

  describe('auth', () => {
    let tokenServer: TestServer | undefined;
    let tokenCalls: Array<{ authorization?: string; scope: string | null; service: string | null }>;

    const bearerChallenge = (): string => `Bearer realm="http://${tokenServer!.host}/token",service="fake"`;

    async function startTokenServer(): Promise<void> {
      tokenCalls = [];
      tokenServer = await startServer((request: http.IncomingMessage, _body, response) => {
        const url = new URL(request.url ?? '/', 'http://x');
        const call = { authorization: request.headers.authorization, scope: url.searchParams.get('scope'), service: url.searchParams.get('service') };
        tokenCalls.push(call);
        const ok = url.pathname === '/token' && call.authorization === basic(USER, PASSWORD) && call.scope === `repository:${REPO}:pull,push` && call.service === 'fake';
        response.writeHead(ok ? 200 : 401, { 'content-type': 'application/json' });
        response.end(ok ? JSON.stringify({ token: 'good-token' }) : JSON.stringify({ details: 'refused' }));
      });
      registry.auth = (request) => (request.headers.authorization === 'Bearer good-token' ? undefined : bearerChallenge());
    }

    afterEach(async () => {
      await tokenServer?.close();
      tokenServer = undefined;
    });

    it('follows a Bearer challenge: Basic credentials at the realm with scope and service, then the token, once per repository', async () => {
      await startTokenServer();
      const data = Buffer.from('blob behind auth');
      const c = client({ credentials: [fakeSource()] });
      assert.equal(await c.manifestDigest(REPO, 'missing'), undefined);
      assert.equal(await c.hasBlob(REPO, sha256(data)), false);
      const pushed = await c.pushBlob(REPO, data);
      assert.equal(pushed.uploaded, true);
      assert.deepEqual(registry.blobs.get(`${REPO}@${sha256(data)}`), data);
      assert.equal(tokenCalls.length, 1, 'one token for several requests to the same repository');
      assert.deepEqual(tokenCalls[0], { authorization: basic(USER, PASSWORD), scope: `repository:${REPO}:pull,push`, service: 'fake' });
      // Only the very first request went without the token.
      assert.equal(registry.requests[0].headers.authorization, undefined);
      assert.ok(registry.requests.slice(1).every((r) => r.headers.authorization === 'Bearer good-token'));
    });

    it('answers a Basic challenge with the Basic credentials', async () => {
      registry.auth = (request) => (request.headers.authorization === basic(USER, PASSWORD) ? undefined : 'Basic realm="x"');
      const digest = registry.seedManifest(REPO, 'v1', json({ schemaVersion: 2 }), MEDIA.ociManifest);
      const c = client({ credentials: [fakeSource()] });
      assert.equal(await c.manifestDigest(REPO, 'v1'), digest);
      assert.deepEqual(
        registry.requests.map((r) => r.headers.authorization),
        [undefined, basic(USER, PASSWORD)],
      );
    });

    it('reports refused credentials at a token service as AUTH_REFUSED naming the user and source, never the password', async () => {
      await startTokenServer();
      const error = await registryError(client({ credentials: [fakeSource(USER, 'wrong-Pa55')] }).manifestDigest(REPO, 'v1'));
      assert.equal(error.code, 'AUTH_REFUSED');
      assert.match(error.message, /"alice"/);
      assert.match(error.message, /the test credential source/);
      assert.ok(!error.message.includes('wrong-Pa55'), error.message);
    });

    it('reports credentials a Basic registry refuses as AUTH_REFUSED naming the user and source, never the password', async () => {
      registry.auth = (request) => (request.headers.authorization === basic(USER, PASSWORD) ? undefined : 'Basic realm="x"');
      const error = await registryError(client({ credentials: [fakeSource(USER, 'wrong-Pa55')] }).manifestDigest(REPO, 'v1'));
      assert.equal(error.code, 'AUTH_REFUSED');
      assert.match(error.message, /"alice"/);
      assert.match(error.message, /the test credential source/);
      assert.match(error.message, new RegExp(registry.host.replace(/\./g, '\\.')));
      assert.ok(!error.message.includes('wrong-Pa55'), error.message);
      assert.ok(!error.message.includes(Buffer.from(`${USER}:wrong-Pa55`).toString('base64')), error.message);
    });

    it('without credentials, a Bearer registry that refuses anonymous tokens says to docker login', async () => {
      await startTokenServer();
      const error = await registryError(client().manifestDigest(REPO, 'v1'));
      assert.equal(error.code, 'AUTH_REFUSED');
      assert.match(error.message, new RegExp(`docker login ${registry.host.replace(/\./g, '\\.')}`));
      assert.equal(tokenCalls[0]?.authorization, undefined, 'no credentials are sent to the token service');
    });

    it('without credentials, a Basic registry says to docker login', async () => {
      registry.auth = () => 'Basic realm="x"';
      const error = await registryError(client().pushBlob(REPO, Buffer.from('x')));
      assert.equal(error.code, 'AUTH_REFUSED');
      assert.match(error.message, /docker login 127\.0\.0\.1:\d+/);
      assert.equal(registry.requests.length, 1);
    });

    it('looks credentials up once per client, from the sources it is given', async () => {
      registry.auth = (request) => (request.headers.authorization === basic('other', 'pw') ? undefined : 'Basic realm="x"');
      let asked = 0;
      const counting: CredentialSource = async (name) => {
        asked += 1;
        assert.equal(name, registry.host);
        return { username: 'other', password: 'pw', source: 'counting' };
      };
      const c = client({ credentials: [counting] });
      await c.manifestDigest(REPO, 'a');
      await c.manifestDigest('team/other', 'b');
      assert.equal(asked, 1, 'credentials are looked up once per client');
    });
  });

  it('reports a registry that does not answer as UNREACHABLE, naming it', async () => {
    const closed = await startServer((_request, _body, response) => response.end());
    const host = closed.host;
    await closed.close();
    const error = await registryError(new RegistryClient(host, { credentials: [] }).manifestDigest(REPO, 'v1'));
    assert.equal(error.code, 'UNREACHABLE');
    assert.ok(error.message.includes(host), error.message);
  });
});

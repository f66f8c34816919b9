/**
 * Images end to end with real parts only: Debian's docker-registry on 127.0.0.1 (anonymous and htpasswd),
 * a base image with Node made from this machine's files, environment images built by buildah, code
 * layers appended by the product, and the result pulled (skopeo), unpacked (umoci) and run (runc), where
 * the shim answers the generated typed client. What moved is read from the registry's own access log.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { RemoteFunction } from '../runtime-shim/client';
import { CLIS, ROOT, copyService, loadClient, run, type RunResult } from './helpers';
import { buildNodeBase, commandExists, freePort, runImage, startRegistry, type TestRegistry } from './registry';

interface ImagedClient {
  greet: RemoteFunction<{ name: string }, { message: string; marker: string }>;
  shout: RemoteFunction<string, string>;
}

interface ImagesFile {
  [fn: string]: { reference: string; digest: string; environmentTag: string; environmentBuilt: boolean };
}

const TOOLS = ['docker-registry', 'buildah', 'skopeo', 'umoci', 'runc', 'htpasswd'];

function packageWith(dir: string, env: Record<string, string>): Promise<RunResult> {
  return run(process.execPath, [CLIS.osls, 'package', '--verbose'], dir, 300_000, env);
}

/** Blob uploads the registry completed since `mark`: the digests of the closing PUTs. */
/** Call `registry.sync()` first: the access log is written asynchronously. */
function uploadedBlobs(registry: TestRegistry, mark: number): string[] {
  return registry
    .requests()
    .slice(mark)
    .filter((r) => r.method === 'PUT' && r.path.includes('/blobs/uploads/') && r.status === 201)
    .map((r) => decodeURIComponent(/[?&]digest=([^&]+)/.exec(r.path)?.[1] ?? ''));
}

function manifestPuts(registry: TestRegistry, mark: number): string[] {
  return registry
    .requests()
    .slice(mark)
    .filter((r) => r.method === 'PUT' && r.path.includes('/manifests/'))
    .map((r) => r.path);
}

describe('images on a real registry: buildah, daemonless code layers, runc', function () {
  this.timeout(600_000);
  let registry: TestRegistry;
  let base = '';
  let dir = '';
  let env: Record<string, string> = {};
  const images = (): ImagesFile => JSON.parse(fs.readFileSync(path.join(dir, '.serverless', 'gpu', 'images.json'), 'utf8')) as ImagesFile;

  before(async function () {
    const missing = TOOLS.filter((tool) => !commandExists(tool));
    if (missing.length > 0) throw new Error(`missing ${missing.join(', ')}: .ci/run installs them with apt-get`);
    registry = await startRegistry();
    base = buildNodeBase(registry.host);
    dir = copyService(path.join(ROOT, 'integration', 'fixtures', 'imaged'), 'imaged');
    env = { SGPU_TEST_REGISTRY: `${registry.host}/acme`, SGPU_TEST_BASE: base, SGPU_TEST_LOUD: 'yes' };
  });

  after(async () => {
    await registry?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('builds each environment once, pushes code images, and the image answers the typed client under runc', async () => {
    const packaged = await packageWith(dir, env);
    assert.equal(packaged.code, 0, packaged.output);
    assert.match(packaged.output, /greet: environment env-[0-9a-f]{32} built and pushed/);
    assert.match(packaged.output, /shout: environment env-[0-9a-f]{32} built and pushed/);
    const built = images();
    assert.match(built.greet.reference, new RegExp(`^${registry.host}/acme/imaged@sha256:[0-9a-f]{64}$`));

    const generated = await run(process.execPath, [CLIS.osls, 'gpu', 'client'], dir, 120_000, env);
    assert.equal(generated.code, 0, generated.output);
    const client = loadClient<ImagedClient>(path.join(dir, 'generated', 'client'));
    const container = await runImage(built.greet.reference);
    try {
      const out = await client.greet.with({ endpoint: `http://127.0.0.1:${container.port}` }).remote({ name: 'runc' });
      assert.deepEqual(out, { message: 'hello, runc!', marker: 'built by RUN' });
    } finally {
      assert.equal(await container.stop(), 0, container.log());
    }
    assert.match(container.log(), /SIGTERM: draining 0 call\(s\)/);
  });

  it('after a code-only change, builds no environment and uploads only the changed code layer and config', async () => {
    const before = images();
    fs.writeFileSync(path.join(dir, 'src', 'suffix.ts'), `export const suffix = '!!';\n`);
    await registry.sync();
    const mark = registry.requests().length;
    const packaged = await packageWith(dir, env);
    assert.equal(packaged.code, 0, packaged.output);
    await registry.sync();
    assert.doesNotMatch(packaged.output, /STEP \d/);
    assert.match(packaged.output, /greet: environment env-[0-9a-f]{32} cached in the registry \(not rebuilt\)/);
    const after = images();
    assert.notEqual(after.greet.digest, before.greet.digest);
    assert.equal(after.shout.digest, before.shout.digest, 'shout did not change');
    // From the registry's access log: two blobs (greet's code layer and config) and the manifests.
    const blobs = uploadedBlobs(registry, mark);
    assert.equal(blobs.length, 2, `uploaded: ${blobs.join(', ')}`);
    const manifest = JSON.parse(
      spawnSync('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${after.greet.reference}`], { encoding: 'utf8' }).stdout,
    ) as { config: { digest: string }; layers: Array<{ digest: string }> };
    assert.deepEqual(blobs.sort(), [manifest.config.digest, manifest.layers[manifest.layers.length - 1].digest].sort());
    assert.equal(manifestPuts(registry, mark).length, 2);

    const container = await runImage(after.greet.reference);
    try {
      const response = await fetch(`http://127.0.0.1:${container.port}/v1/call`, {
        method: 'POST',
        body: JSON.stringify({ v: 1, kind: 'call', input: { name: 'again' } }),
      });
      assert.equal(((await response.json()) as { output: { message: string } }).output.message, 'hello, again!!');
    } finally {
      await container.stop();
    }
  });

  it('with no change, uploads no blob and yields the same digests', async () => {
    const before = images();
    await registry.sync();
    const mark = registry.requests().length;
    const packaged = await packageWith(dir, env);
    assert.equal(packaged.code, 0, packaged.output);
    await registry.sync();
    assert.deepEqual(uploadedBlobs(registry, mark), []);
    assert.equal(registry.requests().slice(mark).filter((r) => r.method === 'POST').length, 0, 'no upload was even started');
    assert.equal(images().greet.digest, before.greet.digest);
    assert.equal(images().shout.digest, before.shout.digest);
  });

  it('after a change to one Image spec, rebuilds only that environment', async () => {
    const before = images();
    const packaged = await packageWith(dir, { ...env, SGPU_TEST_LOUD: 'very' });
    assert.equal(packaged.code, 0, packaged.output);
    assert.match(packaged.output, /shout: environment env-[0-9a-f]{32} built and pushed/);
    assert.match(packaged.output, /greet: environment env-[0-9a-f]{32} cached in the registry/);
    assert.equal(packaged.output.match(/STEP 1\//g)?.length, 1, 'one environment built');
    assert.notEqual(images().shout.environmentTag, before.shout.environmentTag);
    assert.equal(images().greet.environmentTag, before.greet.environmentTag);
  });

  describe('clear errors', () => {
    it('names an unknown base image', async () => {
      const result = await packageWith(dir, { ...env, SGPU_TEST_BASE: `${registry.host}/base/nope:missing` });
      assert.notEqual(result.code, 0);
      assert.match(result.output, new RegExp(`base image "${registry.host}/base/nope:missing" of .* could not be pulled`));
    });

    it('says the registry is unreachable, with its address', async () => {
      const port = await freePort(); // free, so nothing listens there
      const result = await packageWith(dir, { ...env, SGPU_TEST_REGISTRY: `127.0.0.1:${port}/acme` });
      assert.notEqual(result.code, 0);
      assert.match(result.output, new RegExp(`registry 127\\.0\\.0\\.1:${port} is unreachable at http://127\\.0\\.0\\.1:${port} \\(ECONNREFUSED\\)`));
    });

    it('names both builders when the one configured is missing', async () => {
      const result = await packageWith(dir, { ...env, SGPU_TEST_LOUD: 'needs-a-build', SGPU_TEST_BUILDER: 'docker' });
      assert.notEqual(result.code, 0);
      assert.match(result.output, /provider\.builder is "docker" but no Docker engine with buildx answers/);
    });
  });

  describe('with htpasswd auth', () => {
    let secured: TestRegistry;
    let dockerConfig = '';
    const user = 'tester';
    const password = 's3cret-pa55';

    before(async () => {
      secured = await startRegistry({ htpasswd: { user, password } });
      const copied = spawnSync(
        'skopeo',
        ['copy', '--src-tls-verify=false', '--dest-tls-verify=false', '--dest-creds', `${user}:${password}`, `docker://${base}`, `docker://${secured.host}/base/node:test`],
        { encoding: 'utf8' },
      );
      assert.equal(copied.status, 0, copied.stderr);
      dockerConfig = fs.mkdtempSync(path.join(os.tmpdir(), 'sgpu-docker-config-'));
    });

    after(async () => {
      await secured?.stop();
      fs.rmSync(dockerConfig, { recursive: true, force: true });
    });

    const withCredentials = (pass: string): Record<string, string> => {
      const file = path.join(dockerConfig, 'config.json');
      fs.writeFileSync(file, JSON.stringify({ auths: { [secured.host]: { auth: Buffer.from(`${user}:${pass}`).toString('base64') } } }));
      // The product reads $DOCKER_CONFIG/config.json; buildah reads the same file through REGISTRY_AUTH_FILE.
      return { ...env, SGPU_TEST_REGISTRY: `${secured.host}/acme`, SGPU_TEST_BASE: `${secured.host}/base/node:test`, DOCKER_CONFIG: dockerConfig, REGISTRY_AUTH_FILE: file };
    };

    it('builds and pushes with the credentials of ~/.docker/config.json', async () => {
      const result = await packageWith(dir, withCredentials(password));
      assert.equal(result.code, 0, result.output);
      await secured.sync();
      assert.ok(secured.requests().some((r) => r.method === 'PUT' && r.path.includes('/manifests/') && r.status === 201));
    });

    it('says the credentials were refused, naming the user and never the password', async () => {
      const result = await packageWith(dir, withCredentials('wrong-password'));
      assert.notEqual(result.code, 0);
      assert.match(result.output, new RegExp(`registry ${secured.host} refused the credentials of user "tester" \\(from .*config\\.json\\)`));
      assert.doesNotMatch(result.output, /wrong-password/);
    });
  });
});

import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ImageStep } from '../../runtime-shim/image';
import type { RegistryClient } from '../../providers/registry/client';
import { ConfigError } from '../errors';
import type { BuildRequest, Builder } from './builder';
import { ensureEnvironmentImage, environmentTag, type EnvironmentSpec } from './environment';

const BASE = 'nvidia/cuda:12.4.1-runtime-ubuntu22.04';

function spec(extra: readonly ImageStep[] = [], externals: readonly string[] = ['sharp@0.33.4']): EnvironmentSpec {
  return { steps: [{ op: 'from', base: BASE }, { op: 'apt', packages: ['ffmpeg'] }, { op: 'copy', source: 'models', dest: '/models' }, ...extra], externals };
}

function makeService(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sgpu-env-test-'));
  fs.mkdirSync(path.join(dir, 'models', 'small'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'models', 'labels.txt'), 'cat\ndog\n');
  fs.writeFileSync(path.join(dir, 'models', 'small', 'weights.bin'), Buffer.from([1, 2, 3, 4]));
  return dir;
}

describe('environmentTag', () => {
  const dirs: string[] = [];
  const service = (): string => {
    const dir = makeService();
    dirs.push(dir);
    return dir;
  };

  afterEach(() => {
    for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('gives the same spec the same tag: env- and 32 hex digits', () => {
    const dir = service();
    const tag = environmentTag(spec(), dir);
    assert.match(tag, /^env-[0-9a-f]{32}$/);
    assert.equal(environmentTag(spec(), dir), tag);
  });

  it('does not depend on where the service folder is', () => {
    assert.equal(environmentTag(spec(), service()), environmentTag(spec(), service()));
  });

  it('changes when a step changes or is added', () => {
    const dir = service();
    const tag = environmentTag(spec(), dir);
    const other: EnvironmentSpec = { ...spec(), steps: spec().steps.map((s) => (s.op === 'apt' ? { op: 'apt', packages: ['sox'] } : s)) };
    assert.notEqual(environmentTag(other, dir), tag);
    assert.notEqual(environmentTag(spec([{ op: 'env', vars: { A: '1' } }]), dir), tag);
  });

  it('changes when the external modules or their versions change', () => {
    const dir = service();
    const tag = environmentTag(spec(), dir);
    assert.notEqual(environmentTag(spec([], ['sharp@0.33.5']), dir), tag);
    assert.notEqual(environmentTag(spec([], []), dir), tag);
  });

  it('changes when one byte of a file inside a copied folder changes', () => {
    const dir = service();
    const tag = environmentTag(spec(), dir);
    fs.writeFileSync(path.join(dir, 'models', 'small', 'weights.bin'), Buffer.from([1, 2, 3, 5]));
    const changed = environmentTag(spec(), dir);
    assert.notEqual(changed, tag);
    fs.writeFileSync(path.join(dir, 'models', 'small', 'weights.bin'), Buffer.from([1, 2, 3, 4]));
    assert.equal(environmentTag(spec(), dir), tag, 'restoring the byte restores the tag');
  });

  it('changes when a file is added to a copied folder', () => {
    const dir = service();
    const tag = environmentTag(spec(), dir);
    fs.writeFileSync(path.join(dir, 'models', 'extra.txt'), '');
    assert.notEqual(environmentTag(spec(), dir), tag);
  });

  it('fails with a ConfigError naming the copy when its source is missing', () => {
    const dir = service();
    assert.throws(
      () => environmentTag({ steps: [{ op: 'from', base: BASE }, { op: 'copy', source: 'nope', dest: '/x' }], externals: [] }, dir),
      (error: unknown) => error instanceof ConfigError && error.message.includes('Image.copy("nope")'),
    );
  });
});

describe('ensureEnvironmentImage', () => {
  let dir: string;

  beforeEach(() => {
    dir = makeService();
  });

  afterEach(() => {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const fakeClient = (digest: string | undefined, asked: string[]): RegistryClient =>
    ({
      manifestDigest: async (repository: string, reference: string) => {
        asked.push(`${repository}:${reference}`);
        return digest;
      },
    }) as unknown as RegistryClient;

  interface Seen {
    request: BuildRequest;
    containerfile: string;
    labels: string;
    weights: Buffer;
  }

  const fakeBuilder = (seen: Seen[], fail?: Error): Builder => ({
    name: 'buildah',
    async buildAndPush(request) {
      seen.push({
        request,
        containerfile: fs.readFileSync(path.join(request.contextDir, 'Containerfile'), 'utf8'),
        labels: fs.readFileSync(path.join(request.contextDir, 'copy-0', 'labels.txt'), 'utf8'),
        weights: fs.readFileSync(path.join(request.contextDir, 'copy-0', 'small', 'weights.bin')),
      });
      if (fail) throw fail;
    },
  });

  it('does not build when the registry has the tag', async () => {
    const asked: string[] = [];
    let builders = 0;
    const result = await ensureEnvironmentImage({
      spec: spec(),
      serviceDir: dir,
      registry: '127.0.0.1:5000',
      repository: 'acme/svc',
      client: fakeClient(`sha256:${'1'.repeat(64)}`, asked),
      builder: () => {
        builders += 1;
        return fakeBuilder([]);
      },
      onLine: () => undefined,
    });
    const tag = environmentTag(spec(), dir);
    assert.deepEqual(result, { tag, ref: `127.0.0.1:5000/acme/svc:${tag}`, built: false });
    assert.deepEqual(asked, [`acme/svc:${tag}`]);
    assert.equal(builders, 0);
  });

  it('builds and pushes once, from a context with the Containerfile and the copied files, then removes the context', async () => {
    const seen: Seen[] = [];
    const result = await ensureEnvironmentImage({
      spec: spec(),
      serviceDir: dir,
      registry: '127.0.0.1:5000',
      repository: 'acme/svc',
      client: fakeClient(undefined, []),
      builder: () => fakeBuilder(seen),
      onLine: () => undefined,
    });
    const tag = environmentTag(spec(), dir);
    assert.deepEqual(result, { tag, ref: `127.0.0.1:5000/acme/svc:${tag}`, built: true });
    assert.equal(seen.length, 1);
    const [{ request, containerfile, labels, weights }] = seen;
    assert.equal(request.ref, `127.0.0.1:5000/acme/svc:${tag}`);
    assert.equal(request.base, BASE);
    assert.match(containerfile, new RegExp(`^# .*${tag}`));
    assert.match(containerfile, /\nFROM nvidia\/cuda:12\.4\.1-runtime-ubuntu22\.04\n/);
    assert.match(containerfile, /\nCOPY copy-0 \/models\n/);
    assert.match(containerfile, /'sharp@0\.33\.4'/);
    assert.equal(labels, 'cat\ndog\n');
    assert.deepEqual(weights, Buffer.from([1, 2, 3, 4]));
    assert.equal(fs.existsSync(request.contextDir), false, 'the build context must be removed');
  });

  it('removes the build context when the build fails, and passes the error on', async () => {
    const seen: Seen[] = [];
    await assert.rejects(
      ensureEnvironmentImage({
        spec: spec(),
        serviceDir: dir,
        registry: '127.0.0.1:5000',
        repository: 'acme/svc',
        client: fakeClient(undefined, []),
        builder: () => fakeBuilder(seen, new Error('build broke')),
        onLine: () => undefined,
      }),
      /build broke/,
    );
    assert.equal(seen.length, 1);
    assert.equal(fs.existsSync(seen[0].request.contextDir), false);
  });
});

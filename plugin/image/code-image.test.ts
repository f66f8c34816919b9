import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { MEDIA, RegistryClient, sha256, type ImageManifest } from '../../providers/registry/client';
import { FakeRegistry } from '../../providers/registry/fake-registry';
import type { FunctionSpec } from '../spec';
import { specFixture } from '../spec-fixture';
import { LABELS, codeImageConfig, pushCodeImage, specHash } from './code-image';
import { buildLayer } from './layer';

type ImageConfig = Parameters<typeof codeImageConfig>[0];

const DIFF = `sha256:${'d'.repeat(64)}`;
const BASE_DIFF = `sha256:${'b'.repeat(64)}`;

function baseConfig(env: string[]): ImageConfig {
  return {
    architecture: 'amd64',
    os: 'linux',
    created: '2024-05-01T00:00:00Z',
    config: { Env: env, Cmd: ['bash'], Entrypoint: ['/opt/nvidia/entrypoint.sh'], Labels: { 'org.opencontainers.image.vendor': 'NVIDIA' }, User: 'root' },
    rootfs: { type: 'layers', diff_ids: [BASE_DIFF] },
    history: [{ created_by: 'base step' }],
  } as ImageConfig;
}

const LABEL_VALUES = { [LABELS.function]: 'classify', [LABELS.service]: 'svc' };

describe('codeImageConfig', () => {
  it('appends the code layer to the diff_ids without touching the base config', () => {
    const base = baseConfig(['PATH=/usr/bin']);
    const result = codeImageConfig(base, [{ diffId: DIFF }], LABEL_VALUES);
    assert.deepEqual(result.rootfs, { type: 'layers', diff_ids: [BASE_DIFF, DIFF] });
    assert.deepEqual(base.rootfs.diff_ids, [BASE_DIFF]);
    assert.equal(base.history?.length, 1);
  });

  it('runs the shim from /app with the manifest, replacing the base entry point and command', () => {
    const result = codeImageConfig(baseConfig([]), [{ diffId: DIFF }], LABEL_VALUES);
    assert.deepEqual(result.config?.Entrypoint, ['node', '/app/shim.js', '/app/manifest.json']);
    assert.equal(result.config?.Cmd, null);
    assert.equal(result.config?.WorkingDir, '/app');
  });

  it('keeps the base Env and adds PORT=8080 when the base sets no PORT', () => {
    const env = codeImageConfig(baseConfig(['PATH=/usr/local/nvidia/bin:/usr/bin', 'LANG=C.UTF-8']), [{ diffId: DIFF }], LABEL_VALUES).config?.Env ?? [];
    assert.deepEqual(env.slice(0, 2), ['PATH=/usr/local/nvidia/bin:/usr/bin', 'LANG=C.UTF-8']);
    assert.ok(env.includes('PORT=8080'), env.join(' '));
    assert.ok(env.includes('SGPU_MANIFEST=/app/manifest.json'), env.join(' '));
  });

  it('keeps the PORT of the base and adds no other', () => {
    const env = codeImageConfig(baseConfig(['PORT=9000', 'PATH=/usr/bin']), [{ diffId: DIFF }], LABEL_VALUES).config?.Env ?? [];
    assert.deepEqual(
      env.filter((entry) => entry.startsWith('PORT=')),
      ['PORT=9000'],
    );
  });

  it('sets each env var once, overriding the base value of a var it sets', () => {
    const env = codeImageConfig(baseConfig(['NODE_OPTIONS=--max-old-space-size=100']), [{ diffId: DIFF }], LABEL_VALUES).config?.Env ?? [];
    assert.deepEqual(
      env.filter((entry) => entry.startsWith('NODE_OPTIONS=')),
      ['NODE_OPTIONS=--enable-source-maps'],
    );
  });

  it('adds the labels to those of the base and a history entry for the code layer', () => {
    const result = codeImageConfig(baseConfig([]), [{ diffId: DIFF }], LABEL_VALUES);
    assert.deepEqual(result.config?.Labels, { 'org.opencontainers.image.vendor': 'NVIDIA', ...LABEL_VALUES });
    assert.equal(result.history?.length, 2);
    assert.deepEqual(result.history?.[0], { created_by: 'base step' });
    assert.equal(result.history?.[1].comment, 'classify');
    assert.equal(result.history?.[1].created, '2000-01-01T00:00:00.000Z');
    assert.match(result.history?.[1].created_by ?? '', /serverless-gpu/);
  });

  it('keeps the other fields of the base', () => {
    const result = codeImageConfig(baseConfig([]), [{ diffId: DIFF }], LABEL_VALUES);
    assert.equal(result.architecture, 'amd64');
    assert.equal(result.os, 'linux');
    assert.equal(result.created, '2024-05-01T00:00:00Z');
    assert.equal((result.config as Record<string, unknown>).User, 'root');
  });
});

const FUNCTION: FunctionSpec = specFixture({
  name: 'classify',
  service: 'svc',
  file: '/svc/src/classify.ts',
  relFile: 'src/classify.ts',
  exportName: 'classify',
  image: { steps: [{ op: 'from', base: 'node:20-slim' }], hash: 'h' },
});

describe('pushCodeImage', function () {
  this.timeout(10_000);
  const REPO = 'acme/svc';
  let registry: FakeRegistry;
  let artifactDir: string;
  let envLayer: { digest: string; size: number };

  async function seedEnvironment(docker: boolean): Promise<void> {
    const layer = await buildLayer([{ path: 'usr/lib/env.txt', data: Buffer.from('environment') }]);
    envLayer = { digest: registry.seedBlob(REPO, layer.blob), size: layer.blob.length };
    const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: { Env: ['PATH=/usr/bin'] }, rootfs: { type: 'layers', diff_ids: [layer.diffId] } }));
    const configDigest = registry.seedBlob(REPO, config);
    const manifest = {
      schemaVersion: 2,
      mediaType: docker ? MEDIA.dockerManifest : MEDIA.ociManifest,
      config: { mediaType: docker ? MEDIA.dockerConfig : MEDIA.ociConfig, digest: configDigest, size: config.length },
      layers: [{ mediaType: docker ? MEDIA.dockerLayerGzip : MEDIA.ociLayerGzip, ...envLayer }],
    };
    registry.seedManifest(REPO, 'env-x', Buffer.from(JSON.stringify(manifest)), manifest.mediaType);
  }

  beforeEach(async () => {
    registry = await new FakeRegistry().start();
    artifactDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sgpu-code-image-'));
    fs.writeFileSync(path.join(artifactDir, 'bundle.js'), 'exports.classify = () => 1;\n');
    fs.writeFileSync(path.join(artifactDir, 'shim.js'), 'require("./bundle.js");\n');
    fs.writeFileSync(path.join(artifactDir, 'manifest.json'), '{"bundle":"./bundle.js"}\n');
  });

  afterEach(async () => {
    await registry.close();
    fs.rmSync(artifactDir, { recursive: true, force: true });
  });

  const push = (client: RegistryClient) => pushCodeImage({ client, repository: REPO, environmentTag: 'env-x', artifactDir, spec: FUNCTION });

  const stored = (result: { digest: string }): ImageManifest => {
    const manifest = registry.manifest(REPO, result.digest);
    assert.ok(manifest, 'the manifest must be in the registry under its digest');
    return JSON.parse(manifest.body.toString('utf8')) as ImageManifest;
  };

  it('pushes a manifest of the environment layers plus the code layer, with OCI media types and labelled config', async () => {
    await seedEnvironment(false);
    const client = new RegistryClient(registry.host, { credentials: [] });
    const result = await push(client);

    assert.equal(result.reference, `${registry.host}/${REPO}@${result.digest}`);
    assert.equal(registry.manifest(REPO, result.tag)?.mediaType, MEDIA.ociManifest);
    assert.equal(sha256(registry.manifest(REPO, result.tag)!.body), result.digest);
    assert.match(result.tag, /^classify-[0-9a-f]{12}$/);

    const manifest = stored(result);
    assert.equal(manifest.mediaType, MEDIA.ociManifest);
    assert.equal(manifest.config.mediaType, MEDIA.ociConfig);
    assert.equal(manifest.layers.length, 3, 'the environment, the runtime (shim) and the function');
    assert.deepEqual(manifest.layers[0], { mediaType: MEDIA.ociLayerGzip, ...envLayer });
    assert.equal(manifest.layers[1].mediaType, MEDIA.ociLayerGzip);
    assert.notEqual(manifest.layers[1].digest, result.layer.digest);
    assert.deepEqual(manifest.layers[2], { mediaType: MEDIA.ociLayerGzip, digest: result.layer.digest, size: result.layer.size });

    const config = JSON.parse(registry.blobs.get(`${REPO}@${manifest.config.digest}`)!.toString('utf8')) as ReturnType<typeof codeImageConfig>;
    assert.equal(manifest.config.size, registry.blobs.get(`${REPO}@${manifest.config.digest}`)!.length);
    assert.deepEqual(config.config?.Labels, {
      [LABELS.service]: 'svc',
      [LABELS.function]: 'classify',
      [LABELS.specHash]: specHash(FUNCTION),
      [LABELS.environment]: 'env-x',
    });
    assert.equal(config.rootfs.diff_ids.length, 3, 'the environment, the runtime and the function');
    assert.equal(config.rootfs.diff_ids[2], result.layer.diffId);
    assert.deepEqual(config.config?.Entrypoint, ['node', '/app/shim.js', '/app/manifest.json']);

    const layerBlob = registry.blobs.get(`${REPO}@${result.layer.digest}`)!;
    assert.equal(sha256(zlib.gunzipSync(layerBlob)), result.layer.diffId);
    const tarText = zlib.gunzipSync(layerBlob).toString('latin1');
    for (const name of ['app/bundle.js', 'app/manifest.json']) assert.ok(tarText.includes(name), name);
    assert.ok(!tarText.includes('app/shim.js'), 'the shim goes in its own layer');
    assert.ok(tarText.includes('exports.classify = () => 1;'));
    const runtimeText = zlib.gunzipSync(registry.blobs.get(`${REPO}@${manifest.layers[1].digest}`)!).toString('latin1');
    assert.ok(runtimeText.includes('app/shim.js'), 'the runtime layer holds the shim');
  });

  it('uploads no blob when the same image is pushed again, and answers the same digest', async () => {
    await seedEnvironment(false);
    const first = await push(new RegistryClient(registry.host, { credentials: [] }));
    registry.requests.length = 0;
    const client = new RegistryClient(registry.host, { credentials: [] });
    const second = await push(client);
    assert.equal(second.digest, first.digest);
    assert.equal(second.reference, first.reference);
    const methods = registry.requests.map((r) => r.method);
    assert.ok(!methods.includes('POST'), registry.calls().join('\n'));
    assert.ok(!methods.includes('PATCH'), registry.calls().join('\n'));
    assert.deepEqual(
      registry.calls().filter((call) => call.startsWith('PUT')),
      [`PUT /v2/${REPO}/manifests/${first.tag}`],
    );
    assert.equal(client.stats.blobsUploaded, 0);
    assert.equal(client.stats.blobsSkipped, 3);
  });

  it('uploads only the code layer and config after a code change', async () => {
    await seedEnvironment(false);
    const first = await push(new RegistryClient(registry.host, { credentials: [] }));
    fs.writeFileSync(path.join(artifactDir, 'bundle.js'), 'exports.classify = () => 2;\n');
    registry.requests.length = 0;
    const second = await push(new RegistryClient(registry.host, { credentials: [] }));
    assert.notEqual(second.digest, first.digest);
    assert.equal(registry.requests.filter((r) => r.method === 'POST').length, 2);
    assert.ok(!registry.calls().includes(`HEAD /v2/${REPO}/blobs/${envLayer.digest}`), 'the environment layer is not even checked');
  });

  it('uses Docker media types over a Docker v2 environment manifest', async () => {
    await seedEnvironment(true);
    const result = await push(new RegistryClient(registry.host, { credentials: [] }));
    assert.equal(registry.manifest(REPO, result.tag)?.mediaType, MEDIA.dockerManifest);
    const manifest = stored(result);
    assert.equal(manifest.mediaType, MEDIA.dockerManifest);
    assert.equal(manifest.config.mediaType, MEDIA.dockerConfig);
    assert.deepEqual(
      manifest.layers.map((l) => l.mediaType),
      [MEDIA.dockerLayerGzip, MEDIA.dockerLayerGzip, MEDIA.dockerLayerGzip],
    );
  });

  it('fails with NOT_FOUND when the environment tag is missing', async () => {
    await assert.rejects(push(new RegistryClient(registry.host, { credentials: [] })), (error: Error & { code?: string }) => error.code === 'NOT_FOUND');
  });
});

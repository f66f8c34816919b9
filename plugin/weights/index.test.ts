import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { readServiceConfig, type ServiceConfig } from '../config';
import { isConfigError } from '../errors';
import type { FunctionSpec } from '../spec';
import type { ProviderIO } from '../../providers/types';
import { FakeGcs } from '../../providers/storage/fake-gcs';
import { planWeightsSync, syncServiceWeights } from './index';

const io: ProviderIO = {
  info: () => undefined,
  notice: () => undefined,
  warning: () => undefined,
  verbose: () => undefined,
  progress: () => ({ update: () => undefined, remove: () => undefined }),
};

function config(serviceDir: string, weights: Record<string, unknown> | undefined): ServiceConfig {
  return readServiceConfig(
    { service: 'svc', provider: { name: 'gpu', target: 'cloudrun', ...(weights ? { weights } : {}) }, functions: { a: { handler: 'src/a.a' } } },
    { serviceDir, stage: 'dev' },
  );
}

/** The fields of a spec the weights step reads. */
function spec(name: string, target: FunctionSpec['target'], weights?: { prefix: string; source?: string }): FunctionSpec {
  return { name, target, weights } as unknown as FunctionSpec;
}

describe('planWeightsSync', () => {
  let dir: string;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sgpu-plan-'));
    fs.mkdirSync(path.join(dir, 'weights', 'clf'), { recursive: true });
    fs.mkdirSync(path.join(dir, 'weights', 'other'), { recursive: true });
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('syncs to Cloud Storage (laid out for mounts) for cloudrun and gke, to S3 for batch, and skips local', () => {
    const plans = planWeightsSync(config(dir, { bucket: 'acme-models' }), [
      spec('serve', 'cloudrun', { prefix: 'clf', source: './weights/clf' }),
      spec('embed', 'gke', { prefix: 'clf' }),
      spec('train', 'batch', { prefix: 'clf', source: 'weights/clf' }),
      spec('try', 'local', { prefix: 'local-only', source: './nowhere' }),
      spec('plain', 'cloudrun'),
    ]);
    assert.deepEqual(plans, [
      { prefix: 'clf', store: 'gcs', bucket: 'acme-models', source: path.join(dir, 'weights', 'clf'), materialize: true, functions: ['serve', 'embed'] },
      { prefix: 'clf', store: 's3', bucket: 'acme-models', source: path.join(dir, 'weights', 'clf'), materialize: false, functions: ['train'] },
    ]);
  });

  it('needs provider.weights.bucket, and says which functions read weights', () => {
    assert.throws(
      () => planWeightsSync(config(dir, undefined), [spec('serve', 'cloudrun', { prefix: 'clf', source: './weights/clf' })]),
      (e: unknown) => isConfigError(e) && e.path === 'provider.weights.bucket' && /serve \(weights.prefix "clf"\)/.test(e.message),
    );
    assert.deepEqual(planWeightsSync(config(dir, undefined), [spec('try', 'local', { prefix: 'clf', source: './x' })]), []);
  });

  it('rejects one prefix synced from two folders, and a source that is not a folder', () => {
    assert.throws(
      () =>
        planWeightsSync(config(dir, { bucket: 'b' }), [
          spec('a', 'cloudrun', { prefix: 'clf', source: './weights/clf' }),
          spec('b', 'batch', { prefix: 'clf', source: './weights/other' }),
        ]),
      (e: unknown) => isConfigError(e) && e.path === 'functions.b.weights.source' && /two folders: weights\/clf \(function a\) and .\/weights\/other/.test(e.message),
    );
    assert.throws(
      () => planWeightsSync(config(dir, { bucket: 'b' }), [spec('a', 'cloudrun', { prefix: 'clf', source: './missing' })]),
      (e: unknown) => isConfigError(e) && e.path === 'functions.a.weights.source' && /is not a folder/.test(e.message),
    );
  });

  it('accepts provider.weights.keep and rejects a keep below 1', () => {
    assert.equal(config(dir, { bucket: 'b', keep: 5 }).provider.weights?.keep, 5);
    assert.throws(() => config(dir, { bucket: 'b', keep: 0 }), (e: unknown) => isConfigError(e) && /provider.weights.keep/.test(e.message));
  });
});

describe('syncServiceWeights to Cloud Storage (request shape, loopback fake of the JSON API)', () => {
  let fake: FakeGcs;
  let saved: string | undefined;
  let dir: string;

  before(async () => {
    fake = await new FakeGcs().start();
    saved = process.env.STORAGE_EMULATOR_HOST;
    process.env.STORAGE_EMULATOR_HOST = fake.endpoint;
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sgpu-sync-gcs-'));
    fs.mkdirSync(path.join(dir, 'weights', 'clf', 'tok'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'weights', 'clf', 'model.onnx'), Buffer.alloc(20_000, 3));
    fs.writeFileSync(path.join(dir, 'weights', 'clf', 'tok', 'vocab.txt'), 'a\nb\n');
  });

  after(async () => {
    if (saved === undefined) delete process.env.STORAGE_EMULATOR_HOST;
    else process.env.STORAGE_EMULATOR_HOST = saved;
    await fake.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('uploads blobs, lays the version out by path with rewrites, switches the pointer last, and returns the mount folder', async () => {
    const synced = await syncServiceWeights(config(dir, { bucket: 'acme-models' }), [spec('serve', 'cloudrun', { prefix: 'clf', source: './weights/clf' })], io);
    const version = synced.clf.version!;
    assert.equal(synced.clf.mountDir, `clf/versions/${version}`);
    const names = [...fake.objects.keys()].sort();
    assert.deepEqual(names.filter((n) => n.includes('/versions/') && !n.includes('.sgpu')), [`acme-models/clf/versions/${version}/model.onnx`, `acme-models/clf/versions/${version}/tok/vocab.txt`]);
    assert.equal(names.filter((n) => n.includes('/.sgpu/blobs/')).length, 2);
    const writes = fake.requests.filter((r) => r.method !== 'GET' && r.method !== 'DELETE').map((r) => new URL(r.url, 'http://x'));
    const last = writes[writes.length - 1];
    assert.equal(last.searchParams.get('name'), 'clf/.sgpu/current', 'the pointer is the last write');
    assert.equal(writes.filter((u) => u.pathname.includes('/rewriteTo/')).length, 2, 'two server-side copies');

    fake.requests.length = 0;
    const again = await syncServiceWeights(config(dir, { bucket: 'acme-models' }), [spec('serve', 'cloudrun', { prefix: 'clf', source: './weights/clf' })], io);
    assert.equal(again.clf.version, version);
    assert.deepEqual(fake.requests.filter((r) => r.method !== 'GET').map((r) => `${r.method} ${r.url}`), [], 'an unchanged folder writes nothing');
  });

  it('reports the current version of a prefix without a source, or the bare prefix when none was synced', async () => {
    const synced = await syncServiceWeights(config(dir, { bucket: 'acme-models' }), [spec('serve', 'gke', { prefix: 'clf' }), spec('x', 'cloudrun', { prefix: 'by-hand' })], io);
    assert.match(synced.clf.version ?? '', /^[0-9a-f]{16}$/);
    assert.deepEqual(synced['by-hand'], { prefix: 'by-hand', version: undefined, mountDir: 'by-hand', results: {} });
  });
});

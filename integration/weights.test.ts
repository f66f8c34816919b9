/**
 * Weights end to end against a real S3-protocol server (s3rver on 127.0.0.1), reached by the AWS SDK
 * v3 through AWS_ENDPOINT_URL_S3 as a user's S3-compatible store would be: syncWeights uploads only what
 * changed, a sync killed halfway never becomes visible, old versions are pruned, and fetchWeights gets
 * a version back with ranged reads, checksums and a warm-restart marker.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { S3Store } from '../providers/storage/s3';
import { sha256Of } from '../providers/storage/hash';
import { getText } from '../providers/storage/object-store';
import { parsePointer, weightsKeys } from '../providers/storage/weights-layout';
import { syncWeights } from '../plugin/weights/sync';
import { syncServiceWeights } from '../plugin/weights/index';
import { readServiceConfig } from '../plugin/config';
import type { FunctionSpec } from '../plugin/spec';
import type { ProviderIO } from '../providers/types';
import { fetchWeights, fetchWeightsFromEnv, MARKER_FILE, WeightsIntegrityError } from '../runtime-shim/weights-fetch';
import { s3rverEnv, startS3rver, useS3rverEnv, type TestS3 } from './s3rver';
import { CLIS, ROOT, copyService, run } from './helpers';

const BUCKET = 'acme-models';
const HOUR_AGO = new Date(Date.now() - 3600_000);

/** Writes files (path → content) under `dir`, dated an hour ago as weights on disk usually are. */
function writeFiles(dir: string, files: Record<string, Buffer | string>): void {
  for (const [rel, content] of Object.entries(files)) {
    const file = path.join(dir, rel);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, content);
    fs.utimesSync(file, HOUR_AGO, HOUR_AGO);
  }
}

/** Every file under `dir` (marker excluded) as path → sha256. */
function treeOf(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string, rel: string): void => {
    for (const name of fs.readdirSync(d).sort()) {
      const abs = path.join(d, name);
      const r = rel ? `${rel}/${name}` : name;
      if (fs.statSync(abs).isDirectory()) walk(abs, r);
      else if (name !== MARKER_FILE) out[r] = sha256Of(fs.readFileSync(abs));
    }
  };
  walk(dir, '');
  return out;
}

const silentIO: ProviderIO = {
  info: () => undefined,
  notice: () => undefined,
  warning: () => undefined,
  verbose: () => undefined,
  progress: () => ({ update: () => undefined, remove: () => undefined }),
};

describe('weights on a real S3-protocol server (s3rver on 127.0.0.1)', function () {
  this.timeout(120_000);
  let s3: TestS3;
  let restoreEnv: () => void;
  let store: S3Store;
  let tmp: string;

  before(async () => {
    s3 = await startS3rver([BUCKET]);
    restoreEnv = useS3rverEnv(s3);
    // No endpoint passed: the SDK finds s3rver through AWS_ENDPOINT_URL_S3 by itself.
    store = new S3Store({ bucket: BUCKET });
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'sgpu-weights-'));
  });

  after(async () => {
    restoreEnv?.();
    await s3?.stop();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  describe('sync', () => {
    const prefix = 'classifier';
    let source: string;
    let state: string;
    let first: string;

    before(() => {
      source = path.join(tmp, 'classifier');
      state = path.join(tmp, 'state');
      writeFiles(source, {
        'config.json': '{"labels":["junior","senior"]}',
        'tokenizer/vocab.txt': 'a\nb\nc\n',
        'model.onnx': randomBytes(300_000),
        'shards/part-0.bin': randomBytes(100_000),
        'shards/part-1.bin': randomBytes(100_000),
        'same-as-config.json': '{"labels":["junior","senior"]}',
      });
    });

    it('first sync uploads every distinct file and makes the version current', async () => {
      await s3.resetStats();
      const result = await syncWeights({ store, prefix, source, stateDir: state, io: silentIO });
      first = result.version;
      assert.equal(result.files, 6);
      assert.equal(result.uploadedFiles, 5, 'two files of the same content go up once');
      assert.equal(result.hashedFiles, 6);
      assert.equal(result.previous, undefined);
      const pointer = parsePointer((await getText(store, weightsKeys(prefix).current))!, 'current');
      assert.equal(pointer.version, first);
      const stats = await s3.stats();
      assert.ok(stats.bodyBytes >= 500_000 + 30, `uploaded ${stats.bodyBytes} bytes`);

      const dest = path.join(tmp, 'fetched-first');
      const fetched = await fetchWeights({ store, prefix, dest });
      assert.equal(fetched.version, first);
      assert.deepEqual(treeOf(dest), treeOf(source));
    });

    it('re-sync of the unchanged folder uploads nothing, reads no file content and finishes fast', async () => {
      await s3.resetStats();
      const result = await syncWeights({ store, prefix, source, stateDir: state, io: silentIO });
      assert.equal(result.version, first);
      assert.equal(result.uploadedFiles, 0);
      assert.equal(result.uploadedBytes, 0);
      assert.equal(result.skippedFiles, 6);
      assert.equal(result.hashedFiles, 0, 'the local cache answers every hash');
      assert.equal(result.hashedBytes, 0);
      assert.ok(result.seconds < 2, `took ${result.seconds} s`);
      const stats = await s3.stats();
      assert.equal(stats.byMethod.PUT ?? 0, 0, 'nothing written, not even the pointer');
      assert.equal(stats.bodyBytes, 0);
    });

    it('a changed file uploads only that file (found though its size and mtime stayed the same)', async () => {
      const changed = randomBytes(100_000);
      writeFiles(source, { 'shards/part-1.bin': changed });
      await s3.resetStats();
      const result = await syncWeights({ store, prefix, source, stateDir: state, io: silentIO });
      assert.notEqual(result.version, first);
      assert.equal(result.previous, first);
      assert.equal(result.uploadedFiles, 1);
      assert.equal(result.uploadedBytes, changed.length);
      assert.equal(result.hashedFiles, 1, 'only the changed file is read');
      const stats = await s3.stats();
      assert.equal(stats.byMethod.PUT, 3, 'the blob, the manifest, the pointer');
      assert.ok(stats.bodyBytes < changed.length + 5_000, `sent ${stats.bodyBytes} bytes for a ${changed.length}-byte change`);
      const dest = path.join(tmp, 'fetched-first');
      const fetched = await fetchWeights({ store, prefix, dest });
      assert.equal(fetched.fetchedFiles, 1, 'the earlier fetch holds every other file');
      assert.equal(fetched.bytesFetched, changed.length);
      assert.deepEqual(treeOf(dest), treeOf(source));
    });

    it('a sync killed halfway (SIGKILL) leaves the previous version current and whole; the next sync reuses what it sent', async () => {
      const before = parsePointer((await getText(store, weightsKeys(prefix).current))!, 'current').version;
      const beforeTree = treeOf(source);
      const next = path.join(tmp, 'classifier-next');
      fs.cpSync(source, next, { recursive: true, preserveTimestamps: true });
      writeFiles(next, { 'model.onnx': randomBytes(300_000), 'shards/part-0.bin': randomBytes(100_000), 'shards/part-2.bin': randomBytes(100_000) });

      const child = spawn(process.execPath, [path.join(__dirname, 'weights-sync-child.js'), JSON.stringify({ bucket: BUCKET, prefix, source: next, stallAfter: 2 })], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      let err = '';
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`the child never stalled:\n${out}\n${err}`)), 30_000);
        child.stdout.on('data', (d: Buffer) => {
          out += d.toString();
          if (out.includes('stalled')) {
            clearTimeout(timer);
            resolve();
          }
        });
        child.once('exit', (code) => reject(new Error(`the child exited (${code}) before stalling:\n${out}\n${err}`)));
      });
      const exited = new Promise((resolve) => child.once('exit', (_code, signal) => resolve(signal)));
      child.kill('SIGKILL');
      assert.equal(await exited, 'SIGKILL');

      const after = parsePointer((await getText(store, weightsKeys(prefix).current))!, 'current').version;
      assert.equal(after, before, 'the pointer still names the previous version');
      const dest = path.join(tmp, 'fetched-after-kill');
      const fetched = await fetchWeights({ store, prefix, dest });
      assert.equal(fetched.version, before);
      assert.deepEqual(treeOf(dest), beforeTree);

      const resumed = await syncWeights({ store, prefix, source: next, stateDir: state, io: silentIO });
      assert.equal(resumed.uploadedFiles, 1, 'two of the three new blobs went up before the kill');
      assert.equal((await fetchWeights({ store, prefix, dest })).version, resumed.version);
      assert.deepEqual(treeOf(dest), treeOf(next));
    });

    it('fetchWeights detects a corrupted object in the store and names the file', async () => {
      const keys = weightsKeys(prefix);
      const modelSha = sha256Of(fs.readFileSync(path.join(tmp, 'classifier-next', 'model.onnx')));
      const original = await store.get(keys.blob(modelSha));
      const corrupt = Buffer.from(original);
      corrupt[1234] ^= 0xff;
      await store.client.send(new PutObjectCommand({ Bucket: BUCKET, Key: keys.blob(modelSha), Body: corrupt }));
      try {
        const dest = path.join(tmp, 'fetched-corrupt');
        await assert.rejects(
          fetchWeights({ store, prefix, dest, rangeSize: 64 * 1024 }),
          (error: unknown) =>
            error instanceof WeightsIntegrityError && error.file === 'model.onnx' && /model\.onnx/.test(error.message) && error.message.includes(keys.blob(modelSha)),
        );
        assert.equal(fs.existsSync(path.join(dest, 'model.onnx')), false, 'no corrupt file is left in place');
        assert.deepEqual(fs.readdirSync(dest).filter((n) => n.includes('sgpu-partial')), []);
        assert.equal(fs.existsSync(path.join(dest, MARKER_FILE)), false);
      } finally {
        await store.put(keys.blob(modelSha), original, { sha256: modelSha });
      }
    });

    it('a warm restart of the same version reads only the pointer; files already present are verified, not fetched', async () => {
      const dest = path.join(tmp, 'fetched-after-kill');
      await s3.resetStats();
      const warm = await fetchWeights({ store, prefix, dest });
      assert.equal(warm.warm, true);
      assert.equal(warm.bytesFetched, 0);
      assert.deepEqual((await s3.stats()).byMethod, { GET: 1 });

      fs.rmSync(path.join(dest, MARKER_FILE));
      fs.rmSync(path.join(dest, 'config.json'));
      const cold = await fetchWeights({ store, prefix, dest });
      assert.equal(cold.warm, false);
      assert.equal(cold.fetchedFiles, 1);
      assert.equal(cold.skipped, cold.files - 1);
    });
  });

  it('keeps the last `keep` versions and deletes older manifests and the blobs only they used', async () => {
    const prefix = 'pruned/model';
    const source = path.join(tmp, 'pruned');
    const shared = randomBytes(10_000);
    const versions: string[] = [];
    const ownBlobs: string[] = [];
    for (let i = 0; i < 4; i++) {
      const own = randomBytes(20_000);
      ownBlobs.push(sha256Of(own));
      fs.rmSync(source, { recursive: true, force: true });
      writeFiles(source, { 'shared.bin': shared, 'own.bin': own });
      versions.push((await syncWeights({ store, prefix, source, keep: 2, pruneGraceMs: 0, io: silentIO })).version);
    }
    const keys = weightsKeys(prefix);
    const manifests = (await store.list(keys.manifests)).map((o) => o.key).sort();
    assert.deepEqual(manifests, [keys.manifest(versions[2]), keys.manifest(versions[3])].sort());
    const blobs = (await store.list(keys.blobs)).map((o) => o.key.slice(keys.blobs.length)).sort();
    assert.deepEqual(blobs, [sha256Of(shared), ownBlobs[2], ownBlobs[3]].sort());
    await assert.rejects(fetchWeights({ store, prefix, dest: path.join(tmp, 'old'), version: versions[0] }), /missing its manifest/);
    const older = await fetchWeights({ store, prefix, dest: path.join(tmp, 'kept'), version: versions[2] });
    assert.equal(older.version, versions[2]);
  });

  it('leaves young unreferenced blobs alone (a sync may be running elsewhere) until the grace period passes', async () => {
    const prefix = 'grace';
    const source = path.join(tmp, 'grace');
    writeFiles(source, { 'a.bin': randomBytes(1000) });
    await syncWeights({ store, prefix, source, io: silentIO });
    const keys = weightsKeys(prefix);
    const stray = randomBytes(1000);
    await store.put(keys.blob(sha256Of(stray)), stray, { sha256: sha256Of(stray) });
    await syncWeights({ store, prefix, source, io: silentIO });
    assert.ok((await store.head(keys.blob(sha256Of(stray)))) !== undefined, 'a fresh stray blob survives the default grace');
    await syncWeights({ store, prefix, source, pruneGraceMs: 0, io: silentIO });
    assert.equal(await store.head(keys.blob(sha256Of(stray))), undefined);
  });

  it('downloads a file larger than the range size with parallel ranged GETs', async () => {
    const prefix = 'ranged';
    const source = path.join(tmp, 'ranged');
    const big = randomBytes(1024 * 1024 + 123);
    writeFiles(source, { 'big.bin': big, 'small.txt': 'small' });
    await syncWeights({ store, prefix, source, io: silentIO });
    await s3.resetStats();
    const dest = path.join(tmp, 'ranged-out');
    const fetched = await fetchWeights({ store, prefix, dest, rangeSize: 64 * 1024, concurrency: 6 });
    assert.equal(fetched.bytesFetched, big.length + 5);
    assert.deepEqual(fs.readFileSync(path.join(dest, 'big.bin')), big);
    assert.equal((await s3.stats()).ranged, Math.ceil(big.length / (64 * 1024)), 'one ranged GET per 64 KiB of big.bin; small.txt in one plain GET');
  });

  it('uploads files over the multipart threshold in parts, read straight from the file', async () => {
    const parted = new S3Store({ bucket: BUCKET, multipartThreshold: 5 * 1024 * 1024, partSize: 5 * 1024 * 1024 });
    const prefix = 'multipart';
    const source = path.join(tmp, 'multipart');
    const big = randomBytes(12 * 1024 * 1024);
    writeFiles(source, { 'weights.safetensors': big });
    await s3.resetStats();
    let progress = '';
    const io = { ...silentIO, progress: () => ({ update: (m: string) => (progress = m), remove: () => undefined }) };
    const result = await syncWeights({ store: parted, prefix, source, io });
    assert.equal(result.uploadedBytes, big.length);
    const stats = await s3.stats();
    assert.equal(stats.byMethod.PUT, 3 + 2, 'three parts, then the manifest and the pointer');
    assert.ok(stats.bodyBytes >= big.length && stats.bodyBytes < big.length + 10_000, `sent ${stats.bodyBytes} bytes`);
    assert.match(progress, /1\/1 files, 12\.6 MB\/12\.6 MB/);
    const dest = path.join(tmp, 'multipart-out');
    await fetchWeights({ store, prefix, dest });
    assert.deepEqual(fs.readFileSync(path.join(dest, 'weights.safetensors')), big);
  });

  it('materialize lays each version out by path with server-side copies, and pruning removes old layouts', async () => {
    const prefix = 'mounted';
    const source = path.join(tmp, 'mounted');
    writeFiles(source, { 'model.bin': randomBytes(50_000), 'cfg/config.json': '{}' });
    await s3.resetStats();
    const v1 = await syncWeights({ store, prefix, source, materialize: true, keep: 1, pruneGraceMs: 0, io: silentIO });
    const keys = weightsKeys(prefix);
    assert.equal(v1.copiedFiles, 2);
    const laid = (await store.list(`${keys.mountDir(v1.version)}/`)).map((o) => o.key.slice(keys.mountDir(v1.version).length + 1));
    assert.deepEqual(laid, ['cfg/config.json', 'model.bin']);
    assert.deepEqual(await store.get(keys.materializedFile(v1.version, 'model.bin')), fs.readFileSync(path.join(source, 'model.bin')));
    const stats = await s3.stats();
    assert.ok(stats.bodyBytes < 50_000 + 2 + 5_000, 'copies send no file bytes');

    writeFiles(source, { 'cfg/config.json': '{"v":2}' });
    const v2 = await syncWeights({ store, prefix, source, materialize: true, keep: 1, pruneGraceMs: 0, io: silentIO });
    assert.deepEqual(await store.list(`${keys.mountDir(v1.version)}/`), [], 'the pruned version has no layout left');
    assert.equal((await store.list(`${keys.mountDir(v2.version)}/`)).length, 2);
  });

  it('syncServiceWeights syncs each prefix of batch functions to S3 from provider.weights.bucket; fetchWeightsFromEnv fetches it', async () => {
    const serviceDir = path.join(tmp, 'service');
    writeFiles(path.join(serviceDir, 'weights', 'train'), { 'init.bin': randomBytes(2000) });
    const config = readServiceConfig(
      { service: 'doppel', provider: { name: 'gpu', target: 'batch', aws: { region: 'us-east-1' }, weights: { bucket: BUCKET, keep: 2 } }, functions: { train: { handler: 'src/train.train' } } },
      { serviceDir, stage: 'dev' },
    );
    const spec = { name: 'train', target: 'batch', weights: { prefix: 'train', source: './weights/train', bucket: BUCKET } } as unknown as FunctionSpec;
    const local = { name: 'try', target: 'local', weights: { prefix: 'train', source: './elsewhere' } } as unknown as FunctionSpec;
    const synced = await syncServiceWeights(config, [spec, local], silentIO);
    assert.deepEqual(Object.keys(synced), ['train']);
    assert.match(synced.train.version ?? '', /^[0-9a-f]{16}$/);
    assert.equal(synced.train.mountDir, `train/versions/${synced.train.version}`);
    assert.equal(synced.train.results.s3?.uploadedFiles, 1);
    assert.ok(fs.existsSync(path.join(serviceDir, '.serverless-gpu', 'weights-cache', 'train.json')));

    const logs: string[] = [];
    const dest = path.join(tmp, 'env-dest');
    const fetched = await fetchWeightsFromEnv({ ...process.env, SGPU_WEIGHTS_BUCKET: BUCKET, SGPU_WEIGHTS_PREFIX: 'train', SGPU_WEIGHTS_PATH: dest }, (m) => logs.push(m));
    assert.equal(fetched?.version, synced.train.version);
    assert.match(logs.join('\n'), /weights train@[0-9a-f]{16}: fetched 1 file\(s\), 0\.0 MB in [\d.]+ s/);
    assert.equal(await fetchWeightsFromEnv({}, () => undefined), undefined);
  });
});

describe('sls gpu weights on a service (the real CLI, s3rver on loopback)', function () {
  this.timeout(120_000);
  let s3: TestS3;
  let dir = '';

  before(async () => {
    s3 = await startS3rver(['sgpu-weights-test']);
    dir = copyService(path.join(ROOT, 'integration', 'fixtures', 'weighted'), 'weighted');
    // A stand-in model file, made here rather than kept in the repository.
    fs.writeFileSync(path.join(dir, 'weights', 'model.bin'), Buffer.alloc(300_000, 7));
  });

  after(async () => {
    await s3?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('syncs the folder of a function on a cloud target, then moves nothing when it is unchanged', async () => {
    const first = await run(process.execPath, [CLIS.osls, 'gpu', 'weights'], dir, 120_000, s3rverEnv(s3));
    assert.equal(first.code, 0, first.output);
    assert.match(first.output, /weights models\/demo \(s3\): version [0-9a-f]{16}, 2 of 2 file\(s\) uploaded \(300025 bytes\)/);
    const second = await run(process.execPath, [CLIS.osls, 'gpu', 'weights'], dir, 120_000, s3rverEnv(s3));
    assert.equal(second.code, 0, second.output);
    assert.match(second.output, /weights models\/demo \(s3\): version [0-9a-f]{16}, 0 of 2 file\(s\) uploaded \(0 bytes\)/);
    assert.equal(/version ([0-9a-f]{16})/.exec(first.output)![1], /version ([0-9a-f]{16})/.exec(second.output)![1], 'same content, same version');
  });
});

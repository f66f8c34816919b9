import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import zlib from 'node:zlib';
import * as tar from 'tar-stream';
import { LAYER_MTIME, buildLayer, type LayerFile } from './layer';

interface Entry {
  name: string;
  type: string | null | undefined;
  mode: number | undefined;
  uid: number | undefined;
  gid: number | undefined;
  mtime: Date | undefined;
  data: string;
}

async function listLayer(blob: Buffer): Promise<Entry[]> {
  const extract = tar.extract();
  const entries: Entry[] = [];
  const done = new Promise<void>((resolve, reject) => {
    extract.on('entry', (header, stream, next) => {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: unknown) => chunks.push(chunk as Buffer));
      stream.on('end', () => {
        entries.push({
          name: header.name,
          type: header.type,
          mode: header.mode,
          uid: header.uid,
          gid: header.gid,
          mtime: header.mtime,
          data: Buffer.concat(chunks).toString('utf8'),
        });
        next();
      });
    });
    extract.on('finish', resolve);
    extract.on('error', reject);
  });
  extract.end(zlib.gunzipSync(blob));
  await done;
  return entries;
}

const FILES: LayerFile[] = [
  { path: 'app/shim.js', data: Buffer.from('shim') },
  { path: 'app/bundle.js', data: Buffer.from('bundle') },
  { path: 'app/bin/run', data: Buffer.from('#!/bin/sh\n'), executable: true },
  { path: 'app/manifest.json', data: Buffer.from('{}') },
];

describe('buildLayer', () => {
  it('gives the same blob, digest and diffId for the same files in any order', async () => {
    const a = await buildLayer(FILES);
    const b = await buildLayer([...FILES].reverse());
    assert.ok(a.blob.equals(b.blob), 'the blobs must be byte-identical');
    assert.equal(a.digest, b.digest);
    assert.equal(a.diffId, b.diffId);
    assert.match(a.digest, /^sha256:[0-9a-f]{64}$/);
  });

  it('gives another digest and diffId when one byte of one file changes', async () => {
    const a = await buildLayer(FILES);
    const changed = FILES.map((f) => (f.path === 'app/bundle.js' ? { ...f, data: Buffer.from('bundlE') } : f));
    const b = await buildLayer(changed);
    assert.notEqual(a.digest, b.digest);
    assert.notEqual(a.diffId, b.diffId);
  });

  it('gives another digest when only the executable bit changes', async () => {
    const a = await buildLayer(FILES);
    const b = await buildLayer(FILES.map((f) => ({ ...f, executable: false })));
    assert.notEqual(a.digest, b.digest);
  });

  it('digests the blob, and takes the diffId over the gunzipped tar', async () => {
    const layer = await buildLayer(FILES);
    assert.equal(layer.digest, `sha256:${createHash('sha256').update(layer.blob).digest('hex')}`);
    assert.equal(layer.diffId, `sha256:${createHash('sha256').update(zlib.gunzipSync(layer.blob)).digest('hex')}`);
    assert.notEqual(layer.digest, layer.diffId);
  });

  it('writes sorted entries with every parent folder, a fixed mtime, root owners and 0644/0755 modes', async () => {
    const entries = await listLayer((await buildLayer(FILES)).blob);
    assert.deepEqual(
      entries.map((e) => e.name),
      ['app/', 'app/bin/', 'app/bin/run', 'app/bundle.js', 'app/manifest.json', 'app/shim.js'],
    );
    for (const entry of entries) {
      assert.equal(entry.mtime?.toISOString(), '2000-01-01T00:00:00.000Z', entry.name);
      assert.equal(entry.uid, 0, entry.name);
      assert.equal(entry.gid, 0, entry.name);
    }
    assert.equal(LAYER_MTIME.toISOString(), '2000-01-01T00:00:00.000Z');
    const byName = new Map(entries.map((e) => [e.name, e]));
    assert.deepEqual(
      ['app/', 'app/bin/'].map((name) => [byName.get(name)?.type, byName.get(name)?.mode]),
      [
        ['directory', 0o755],
        ['directory', 0o755],
      ],
    );
    assert.equal(byName.get('app/bin/run')?.mode, 0o755);
    assert.equal(byName.get('app/bundle.js')?.mode, 0o644);
    assert.equal(byName.get('app/bundle.js')?.type, 'file');
    assert.equal(byName.get('app/bundle.js')?.data, 'bundle');
    assert.equal(byName.get('app/bin/run')?.data, '#!/bin/sh\n');
  });

  it('lists a shared parent folder once', async () => {
    const entries = await listLayer((await buildLayer([{ path: 'a/b/c.txt', data: Buffer.from('c') }, { path: 'a/d.txt', data: Buffer.from('d') }])).blob);
    assert.deepEqual(
      entries.map((e) => e.name),
      ['a/', 'a/b/', 'a/b/c.txt', 'a/d.txt'],
    );
  });

  it('refuses absolute paths and paths that climb out with ..', async () => {
    await assert.rejects(buildLayer([{ path: '/etc/passwd', data: Buffer.from('x') }]), /must be relative/);
    await assert.rejects(buildLayer([{ path: 'app/../../etc/passwd', data: Buffer.from('x') }]), /must be relative/);
    await assert.rejects(buildLayer([{ path: '..', data: Buffer.from('x') }]), /must be relative/);
  });
});

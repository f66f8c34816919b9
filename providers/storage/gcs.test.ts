/**
 * The Cloud Storage store by request shape: `@google-cloud/storage` reaching a loopback fake of the JSON
 * API through STORAGE_EMULATOR_HOST. No Cloud Storage server can run here, so these tests check what is
 * sent (bucket, object names, metadata, paging, ranges) and that answers of the documented shape are read
 * right; they say nothing of how Cloud Storage itself behaves.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FakeGcs } from './fake-gcs';
import { GcsStore } from './gcs';
import { getText, isObjectNotFound, putText } from './object-store';

const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

describe('GcsStore (request shape, against a loopback fake of the JSON API)', () => {
  let fake: FakeGcs;
  let store: GcsStore;
  let saved: string | undefined;
  let tmp: string;

  before(async () => {
    fake = await new FakeGcs({ pageSize: 2 }).start();
    saved = process.env.STORAGE_EMULATOR_HOST;
    process.env.STORAGE_EMULATOR_HOST = fake.endpoint;
    store = new GcsStore({ bucket: 'acme-models', resumableThreshold: 64 * 1024 });
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'sgpu-gcs-'));
  });

  after(async () => {
    if (saved === undefined) delete process.env.STORAGE_EMULATOR_HOST;
    else process.env.STORAGE_EMULATOR_HOST = saved;
    await fake.close();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  beforeEach(() => {
    fake.requests.length = 0;
  });

  it('sends requests to STORAGE_EMULATOR_HOST without credentials', async () => {
    await store.head('nothing');
    assert.ok(fake.requests.length > 0, 'the fake saw no request');
    for (const request of fake.requests) assert.equal(request.headers.authorization, undefined);
  });

  it('uploads a small body in one multipart request naming the bucket and object, with sgpu-sha256 metadata', async () => {
    const body = Buffer.from('{"labels":["a","b"]}');
    await store.put('classifier/.sgpu/blobs/abc', body, { sha256: sha256(body), contentType: 'application/json' });
    const uploads = fake.requests.filter((r) => r.url.startsWith('/upload/'));
    assert.equal(uploads.length, 1);
    assert.equal(uploads[0].method, 'POST');
    assert.match(uploads[0].url, /^\/upload\/storage\/v1\/b\/acme-models\/o\?.*uploadType=multipart/);
    assert.equal(new URL(uploads[0].url, 'http://x').searchParams.get('name'), 'classifier/.sgpu/blobs/abc');
    const text = uploads[0].body.toString('utf8');
    assert.match(text, new RegExp(`"sgpu-sha256":"${sha256(body)}"`));
    assert.match(text, /"contentType":"application\/json"/);
    const stored = fake.object('acme-models', 'classifier/.sgpu/blobs/abc');
    assert.deepEqual(stored?.data, body);
    assert.deepEqual(stored?.metadata, { 'sgpu-sha256': sha256(body) });
  });

  it('uploads a file over the threshold through a resumable session, reporting every byte read', async () => {
    const data = Buffer.alloc(300 * 1024, 7);
    const file = path.join(tmp, 'big.bin');
    fs.writeFileSync(file, data);
    let reported = 0;
    await store.put('classifier/.sgpu/blobs/big', { file, size: data.length }, { sha256: sha256(data), onBytes: (n) => (reported += n) });
    const uploads = fake.requests.filter((r) => r.url.startsWith('/upload/'));
    assert.equal(uploads[0].method, 'POST');
    assert.match(uploads[0].url, /uploadType=resumable/);
    assert.equal(new URL(uploads[0].url, 'http://x').searchParams.get('name'), 'classifier/.sgpu/blobs/big');
    assert.match(uploads[0].body.toString('utf8'), new RegExp(`"sgpu-sha256":"${sha256(data)}"`));
    assert.ok(uploads.slice(1).every((r) => r.method === 'PUT' && /upload_id=/.test(r.url)));
    assert.equal(reported, data.length);
    assert.deepEqual(fake.object('acme-models', 'classifier/.sgpu/blobs/big')?.data, data);
  });

  it('lists every page under a prefix, with sizes, md5 and the sha256 from metadata', async () => {
    for (const name of ['p/a', 'p/b', 'p/c', 'p/d', 'p/e', 'q/x']) await store.put(name, Buffer.from(name), { sha256: sha256(Buffer.from(name)) });
    fake.requests.length = 0;
    const listed = await store.list('p/');
    assert.deepEqual(listed.map((o) => o.key), ['p/a', 'p/b', 'p/c', 'p/d', 'p/e']);
    assert.deepEqual(listed[0].size, 3);
    assert.equal(listed[0].sha256, sha256(Buffer.from('p/a')));
    assert.equal(listed[0].md5, createHash('md5').update('p/a').digest('hex'));
    const pages = fake.requests.filter((r) => r.method === 'GET');
    assert.equal(pages.length, 3, 'five objects at two a page take three requests');
    assert.match(pages[0].url, /\/b\/acme-models\/o\?/);
    assert.match(pages[0].url, /prefix=p%2F/);
    assert.doesNotMatch(pages[0].url, /pageToken/);
    assert.match(pages[1].url, /pageToken=2/);
    assert.match(pages[2].url, /pageToken=4/);
  });

  it('reads a byte range with a Range header, and a missing object as ObjectNotFoundError', async () => {
    await store.put('r/obj', Buffer.from('0123456789'));
    fake.requests.length = 0;
    assert.equal((await store.get('r/obj', { start: 2, end: 5 })).toString(), '2345');
    const media = fake.requests.find((r) => /alt=media/.test(r.url));
    assert.equal(media?.headers.range, 'bytes=2-5');
    assert.equal((await store.get('r/obj')).toString(), '0123456789');
    await assert.rejects(store.get('r/missing'), (error: unknown) => isObjectNotFound(error) && /gs:\/\/acme-models\/r\/missing/.test((error as Error).message));
    assert.equal(await getText(store, 'r/missing'), undefined);
    await putText(store, 'r/current', '{"version":"v1"}');
    assert.equal(await getText(store, 'r/current'), '{"version":"v1"}');
  });

  it('heads an object (size, sha256) and answers undefined for a missing one', async () => {
    const body = Buffer.from('head me');
    await store.put('h/obj', body, { sha256: sha256(body) });
    assert.deepEqual(
      { ...(await store.head('h/obj')), modified: undefined },
      { key: 'h/obj', size: body.length, sha256: sha256(body), md5: createHash('md5').update(body).digest('hex'), modified: undefined },
    );
    assert.equal(await store.head('h/missing'), undefined);
  });

  it('copies server-side with a rewrite (no media through this process) and keeps the metadata', async () => {
    const body = Buffer.from('weights');
    await store.put('c/.sgpu/blobs/x', body, { sha256: sha256(body) });
    fake.requests.length = 0;
    await store.copy('c/.sgpu/blobs/x', 'c/versions/v1/model.bin');
    assert.equal(fake.requests.length, 1);
    assert.equal(fake.requests[0].method, 'POST');
    assert.match(fake.requests[0].url, /\/b\/acme-models\/o\/c%2F.sgpu%2Fblobs%2Fx\/rewriteTo\/b\/acme-models\/o\/c%2Fversions%2Fv1%2Fmodel.bin/);
    assert.deepEqual(fake.object('acme-models', 'c/versions/v1/model.bin')?.data, body);
    assert.equal((await store.head('c/versions/v1/model.bin'))?.sha256, sha256(body));
  });

  it('deletes each key with one DELETE, and a missing key is not an error', async () => {
    await store.put('d/1', Buffer.from('1'));
    await store.put('d/2', Buffer.from('2'));
    fake.requests.length = 0;
    await store.delete(['d/1', 'd/2', 'd/never']);
    const deletes = fake.requests.filter((r) => r.method === 'DELETE').map((r) => decodeURIComponent(r.url.replace(/\?.*$/, '')));
    assert.deepEqual(deletes.sort(), ['/b/acme-models/o/d/1', '/b/acme-models/o/d/2', '/b/acme-models/o/d/never'].map((p) => deletesPrefix(fake) + p).sort());
    assert.equal(fake.object('acme-models', 'd/1'), undefined);
  });
});

/** The JSON API path prefix the library used (empty when STORAGE_EMULATOR_HOST is the base URL). */
function deletesPrefix(fake: FakeGcs): string {
  const first = fake.requests.find((r) => r.method === 'DELETE');
  return first?.url.startsWith('/storage/v1/') ? '/storage/v1' : '';
}

/**
 * The S3 store against a real S3-protocol server (s3rver on 127.0.0.1, see integration/s3rver.ts),
 * reached through AWS_ENDPOINT_URL_S3 as the SDK reads it.
 */
import assert from 'node:assert/strict';
import { sha256Of } from './hash';
import { isObjectNotFound } from './object-store';
import { S3Store, customS3Endpoint, s3ClientConfig } from './s3';
import { startS3rver, useS3rverEnv, type TestS3 } from '../../integration/s3rver';
import { isProviderError } from '../../plugin/errors';

describe('S3Store', () => {
  describe('client config', () => {
    it('goes path-style, with checksums only where required, only when the environment names an endpoint', () => {
      assert.deepEqual(s3ClientConfig('eu-west-1', {}), { region: 'eu-west-1' });
      assert.deepEqual(s3ClientConfig(undefined, { AWS_ENDPOINT_URL_S3: 'http://127.0.0.1:9000' }), {
        forcePathStyle: true,
        requestChecksumCalculation: 'WHEN_REQUIRED',
        responseChecksumValidation: 'WHEN_REQUIRED',
      });
      assert.equal(customS3Endpoint({ AWS_ENDPOINT_URL: 'http://minio:9000' }), 'http://minio:9000');
      assert.equal(customS3Endpoint({ AWS_ENDPOINT_URL_S3: '' }), undefined);
    });
  });

  describe('on s3rver', function () {
    this.timeout(60_000);
    let s3: TestS3;
    let restore: () => void;
    let store: S3Store;

    before(async () => {
      s3 = await startS3rver(['models']);
      restore = useS3rverEnv(s3);
      store = new S3Store({ bucket: 'models', pageSize: 2 });
    });

    after(async () => {
      restore?.();
      await s3?.stop();
    });

    it('lists every page under a prefix, in key order, with sizes and single-part MD5s', async () => {
      for (const key of ['p/e', 'p/a', 'p/c', 'p/b', 'p/d', 'q/a']) await store.put(key, Buffer.from(key));
      await s3.resetStats();
      const listed = await store.list('p/');
      assert.deepEqual(listed.map((o) => o.key), ['p/a', 'p/b', 'p/c', 'p/d', 'p/e']);
      assert.equal(listed[0].size, 3);
      assert.match(listed[0].md5 ?? '', /^[0-9a-f]{32}$/);
      assert.ok(listed[0].modified instanceof Date);
      assert.equal((await s3.stats()).byMethod.GET, 3, 'five keys at two a page: three requests');
    });

    it('keeps the SHA-256 in metadata, which HEAD answers', async () => {
      const body = Buffer.from('weights');
      await store.put('h/obj', body, { sha256: sha256Of(body) });
      const head = await store.head('h/obj');
      assert.equal(head?.size, body.length);
      assert.equal(head?.sha256, sha256Of(body));
      assert.equal(await store.head('h/missing'), undefined);
    });

    it('reads ranges, and a missing key as ObjectNotFoundError naming its URL', async () => {
      await store.put('r/obj', Buffer.from('0123456789'));
      assert.equal((await store.get('r/obj', { start: 3, end: 6 })).toString(), '3456');
      await assert.rejects(store.get('r/missing'), (e: unknown) => isObjectNotFound(e) && e.message === 's3://models/r/missing does not exist');
    });

    it('copies server-side with the metadata, and deletes (missing keys are not an error)', async () => {
      const body = Buffer.from('copy me');
      await store.put('c/a b', body, { sha256: sha256Of(body) });
      await s3.resetStats();
      await store.copy('c/a b', 'c/copy/x');
      assert.equal((await s3.stats()).bodyBytes, 0);
      assert.equal((await store.head('c/copy/x'))?.sha256, sha256Of(body));
      await store.delete(['c/a b', 'c/copy/x', 'c/never']);
      assert.deepEqual(await store.list('c/'), []);
    });

    it('fails with a ProviderError naming the bucket when the bucket does not exist', async () => {
      const other = new S3Store({ bucket: 'no-such-bucket' });
      await assert.rejects(other.put('k', Buffer.from('x')), (e: unknown) => isProviderError(e) && /s3:\/\/no-such-bucket\/k/.test(e.message) && /NoSuchBucket/.test(e.message));
    });
  });
});

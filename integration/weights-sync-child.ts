/**
 * Child process for integration/weights.test.ts: runs a real sync to S3 (AWS_ENDPOINT_URL_S3) and, after
 * `stallAfter` blob uploads, prints `stalled` and waits inside the next upload until the test SIGKILLs it.
 *
 *   node weights-sync-child.js '{"bucket":"…","prefix":"…","source":"…","stallAfter":2}'
 */
import { S3Store } from '../providers/storage/s3';
import type { ObjectStore, PutBody, PutOptions } from '../providers/storage/object-store';
import { syncWeights } from '../plugin/weights/sync';

const args = JSON.parse(process.argv[2]) as { bucket: string; prefix: string; source: string; stallAfter: number };
const real = new S3Store({ bucket: args.bucket });
let blobs = 0;
const store: ObjectStore = {
  kind: real.kind,
  bucket: real.bucket,
  list: (prefix) => real.list(prefix),
  get: (key, range) => real.get(key, range),
  head: (key) => real.head(key),
  copy: (from, to) => real.copy(from, to),
  delete: (keys) => real.delete(keys),
  put: async (key: string, body: PutBody, options?: PutOptions) => {
    if (key.includes('/.sgpu/blobs/') && blobs++ === args.stallAfter) {
      process.stdout.write('stalled\n');
      await new Promise(() => undefined);
    }
    return real.put(key, body, options);
  },
};

syncWeights({ store, prefix: args.prefix, source: args.source, concurrency: 1 }).then(
  () => process.stdout.write('finished\n'),
  (error: unknown) => {
    process.stderr.write(`${(error as Error).stack}\n`);
    process.exit(1);
  },
);

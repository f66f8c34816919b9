/**
 * bench/weights: syncing a weights folder through the product vs. the naive way, measured in one run
 * against a real S3-protocol server (s3rver on 127.0.0.1; the AWS SDK reaches it through
 * AWS_ENDPOINT_URL_S3).
 *
 *   product: syncWeights (hash cache, content-addressed blobs, only missing blobs uploaded, 8 in flight)
 *   naive:   PutObject of every file, one at a time (what a deploy script looping over the folder does)
 *
 * measured: (a) first upload, (b) re-sync of the unchanged folder, (c) re-sync after one file changed
 * (product only: the naive way re-uploads everything, as in b), (d) a cold fetch to local disk at start
 * (fetchWeights: ranged parallel GETs, every file verified) vs. GetObject of every file one at a time.
 * Bytes sent are the request bodies s3rver received; bytes fetched are the bodies the clients read.
 *
 *   node dist/bench/weights/run.js
 *   BENCH_FILES=1000 BENCH_BYTES=200000000 node dist/bench/weights/run.js
 *
 * The folder: BENCH_FILES files totalling BENCH_BYTES (default 10,000 files, 2 GB) — 1 in 1,000 files
 * (at least one) holds 80% of the bytes, like model shards beside many small tokenizer/config files —
 * of deterministic pseudo-random content (AES-CTR keystream), dated an hour back as weights on disk
 * usually are, in a temporary folder deleted afterwards. Bounded by BENCH_TIMEOUT_S (default 1800).
 */
import { createCipheriv, createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { startS3rver, useS3rverEnv, type TestS3 } from '../../integration/s3rver';
import { S3Store, s3ClientConfig } from '../../providers/storage/s3';
import { syncWeights } from '../../plugin/weights/sync';
import { fetchWeights } from '../../runtime-shim/weights-fetch';
import type { ProviderIO } from '../../providers/types';

function positiveEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${name}=${raw} must be a positive number`);
  return value;
}

const FILES = Math.floor(positiveEnv('BENCH_FILES', 10_000));
const BYTES = Math.floor(positiveEnv('BENCH_BYTES', 2e9));
const TIMEOUT_S = positiveEnv('BENCH_TIMEOUT_S', 1800);
const CONCURRENCY = Math.floor(positiveEnv('BENCH_CONCURRENCY', 8));
const MiB = 1024 * 1024;

interface Sample {
  readonly seconds: number;
  readonly sent: number;
  readonly requests: number;
}

/** File sizes: 1 in 1,000 files (at least one) shares 80% of the bytes, the rest share 20%. */
function sizes(files: number, bytes: number): number[] {
  const large = Math.max(1, Math.round(files / 1000));
  const small = files - large;
  const largeBytes = small === 0 ? bytes : Math.floor(bytes * 0.8);
  const out: number[] = [];
  for (let i = 0; i < files; i++) {
    const [share, count, index] = i < large ? [largeBytes, large, i] : [bytes - largeBytes, small, i - large];
    out.push(Math.floor(share / count) + (index < share % count ? 1 : 0));
  }
  return out;
}

/** Writes `size` bytes of the keystream for `seed`: the same bytes on every run. */
async function writeDeterministic(file: string, size: number, seed: string): Promise<void> {
  const key = createHash('sha256').update('sgpu-bench').digest().subarray(0, 16);
  const iv = createHash('sha256').update(seed).digest().subarray(0, 16);
  const cipher = createCipheriv('aes-128-ctr', key, iv);
  const zeros = Buffer.alloc(Math.min(size, MiB));
  const out = fs.createWriteStream(file);
  for (let left = size; left > 0; left -= zeros.length) {
    const chunk = cipher.update(left >= zeros.length ? zeros : zeros.subarray(0, left));
    if (!out.write(chunk)) await new Promise<void>((resolve) => out.once('drain', () => resolve()));
  }
  await new Promise<void>((resolve, reject) => out.end((error?: Error | null) => (error ? reject(error) : resolve())));
}

async function makeFolder(root: string): Promise<{ path: string; size: number }[]> {
  const old = new Date(Date.now() - 3600_000);
  const files = sizes(FILES, BYTES).map((size, i) => ({
    path: i < Math.max(1, Math.round(FILES / 1000)) ? `model-${String(i).padStart(5, '0')}-of-shards.safetensors` : `assets/${String(i % 100).padStart(2, '0')}/file-${i}.json`,
    size,
  }));
  let i = 0;
  for (const file of files) {
    const abs = path.join(root, file.path);
    fs.mkdirSync(path.dirname(abs), { recursive: true });
    await writeDeterministic(abs, file.size, `${i++}`);
    fs.utimesSync(abs, old, old);
  }
  return files;
}

const silentIO: ProviderIO = {
  info: () => undefined,
  notice: () => undefined,
  warning: () => undefined,
  verbose: () => undefined,
  progress: () => ({ update: () => undefined, remove: () => undefined }),
};

async function measure(s3: TestS3, what: () => Promise<unknown>): Promise<Sample> {
  await s3.resetStats();
  const started = process.hrtime.bigint();
  await what();
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const stats = await s3.stats();
  return { seconds, sent: stats.bodyBytes, requests: stats.requests };
}

/** The naive upload: every file, one PutObject at a time. */
async function naiveUpload(client: S3Client, bucket: string, root: string, files: readonly { path: string; size: number }[]): Promise<void> {
  for (const file of files) {
    await client.send(
      new PutObjectCommand({ Bucket: bucket, Key: `bench/${file.path}`, Body: fs.createReadStream(path.join(root, file.path)), ContentLength: file.size }),
    );
  }
}

/** The naive fetch: every file, one GetObject at a time, written to disk. */
async function naiveFetch(client: S3Client, bucket: string, dest: string, files: readonly { path: string }[]): Promise<number> {
  let bytes = 0;
  for (const file of files) {
    const reply = await client.send(new GetObjectCommand({ Bucket: bucket, Key: `bench/${file.path}` }));
    const data = Buffer.from(await reply.Body!.transformToByteArray());
    fs.mkdirSync(path.dirname(path.join(dest, file.path)), { recursive: true });
    fs.writeFileSync(path.join(dest, file.path), data);
    bytes += data.length;
  }
  return bytes;
}

const fmtBytes = (n: number): string => (n >= 1e9 ? `${(n / 1e9).toFixed(2)} GB` : n >= 1e6 ? `${(n / 1e6).toFixed(1)} MB` : `${(n / 1e3).toFixed(1)} kB`);
const ratio = (a: number, b: number): string => (b <= 0 ? (a <= 0 ? '1.0x' : '∞') : `${(a / b).toFixed(1)}x`);

function row(name: string, s: Sample): string {
  return `  ${name.padEnd(52)} ${s.seconds.toFixed(2).padStart(8)} s  ${fmtBytes(s.sent).padStart(10)} sent  ${String(s.requests).padStart(6)} requests`;
}

async function main(): Promise<void> {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'sgpu-bench-weights-'));
  let s3: TestS3 | undefined;
  let restore: (() => void) | undefined;
  const cleanup = async (): Promise<void> => {
    restore?.();
    await s3?.stop();
    fs.rmSync(work, { recursive: true, force: true });
  };
  const deadline = setTimeout(() => {
    process.stderr.write(`bench/weights: still running after BENCH_TIMEOUT_S=${TIMEOUT_S} s; stopping\n`);
    cleanup().finally(() => process.exit(1));
  }, TIMEOUT_S * 1000);
  try {
    const source = path.join(work, 'weights');
    const t0 = Date.now();
    const files = await makeFolder(source);
    console.log(`folder: ${files.length} files, ${fmtBytes(files.reduce((s, f) => s + f.size, 0))} (written in ${((Date.now() - t0) / 1000).toFixed(1)} s)`);
    s3 = await startS3rver(['product', 'naive']);
    restore = useS3rverEnv(s3);
    const store = new S3Store({ bucket: 'product' });
    const client = new S3Client(s3ClientConfig('us-east-1'));
    const state = path.join(work, 'state');
    const sync = (): Promise<unknown> => syncWeights({ store, prefix: 'bench', source, stateDir: state, concurrency: CONCURRENCY, io: silentIO });

    const firstProduct = await measure(s3, sync);
    const firstNaive = await measure(s3, () => naiveUpload(client, 'naive', source, files));
    const againProduct = await measure(s3, sync);
    const againNaive = await measure(s3, () => naiveUpload(client, 'naive', source, files));
    const changed = files[files.length - 1];
    await writeDeterministic(path.join(source, changed.path), changed.size, 'changed');
    const oneProduct = await measure(s3, sync);

    let fetchedProduct = 0;
    const fetchProduct = await measure(s3, async () => {
      fetchedProduct = (await fetchWeights({ store, prefix: 'bench', dest: path.join(work, 'fetched-product'), concurrency: CONCURRENCY })).bytesFetched;
    });
    let fetchedNaive = 0;
    const fetchNaive = await measure(s3, async () => {
      fetchedNaive = await naiveFetch(client, 'naive', path.join(work, 'fetched-naive'), files);
    });

    console.log(`\nbench/weights: ${files.length} files, ${fmtBytes(BYTES)}, s3rver on 127.0.0.1, concurrency ${CONCURRENCY}, ${os.cpus().length} CPU(s)`);
    console.log('(a) first upload');
    console.log(row('product: syncWeights', firstProduct));
    console.log(row('naive: PutObject of every file, one at a time', firstNaive));
    console.log(`  naive / product: ${ratio(firstNaive.seconds, firstProduct.seconds)} time, ${ratio(firstNaive.sent, firstProduct.sent)} bytes`);
    console.log('(b) re-sync of the unchanged folder');
    console.log(row('product: syncWeights', againProduct));
    console.log(row('naive: upload everything again', againNaive));
    console.log(`  naive / product: ${ratio(againNaive.seconds, againProduct.seconds)} time, bytes ${fmtBytes(againNaive.sent)} vs ${fmtBytes(againProduct.sent)}`);
    console.log(`(c) re-sync after one file changed (${fmtBytes(changed.size)})`);
    console.log(row('product: syncWeights', oneProduct));
    console.log(`  naive (as b) / product: ${ratio(againNaive.seconds, oneProduct.seconds)} time, ${ratio(againNaive.sent, oneProduct.sent)} bytes`);
    console.log('(d) cold fetch to local disk (container start)');
    console.log(`${row('product: fetchWeights (ranged, parallel, verified)', fetchProduct)}  ${fmtBytes(fetchedProduct)} fetched`);
    console.log(`${row('naive: GetObject of every file, one at a time', fetchNaive)}  ${fmtBytes(fetchedNaive)} fetched`);
    console.log(`  naive / product: ${ratio(fetchNaive.seconds, fetchProduct.seconds)} time`);
  } finally {
    clearTimeout(deadline);
    await cleanup();
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`bench/weights: ${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});

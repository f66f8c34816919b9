/**
 * The batch runner against a real S3-protocol server (s3rver on loopback): input → validate → setup →
 * handler → output/error objects and exit codes; and exit 75 when the store cannot be reached.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import S3rver from 's3rver';
import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { runBatchJob, type BatchEnv } from './batch-runner';
import { EXIT_FAILED, EXIT_RETRYABLE, EXIT_SUCCEEDED, callKey } from './batch-store';
import type { ShimManifest } from './manifest';
import { decodeValue, encodeValue } from './protocol';
import { S3Store } from '../providers/storage/s3';
import { syncWeights } from '../plugin/weights/sync';

const BUCKET = 'calls';
const PREFIX = 'calls/unit/test/echo/';

const BUNDLE = (runtime: string): string => `
const { cls } = require(${JSON.stringify(runtime)});
exports.echo = cls({}, class {
  async setup(ctx) { this.weights = ctx.weights.path; ctx.log('loading'); }
  async handle(input, ctx) {
    if (input.fail) throw new RangeError('cannot take ' + input.fail);
    if (input.sleep) await new Promise((resolve) => setTimeout(resolve, input.sleep));
    return { doubled: input.n * 2, callId: ctx.callId, weights: this.weights, scaled: input.vec ? Float32Array.from(input.vec, (x) => x * 2) : undefined };
  }
});
exports.weighted = cls({}, class {
  async setup(ctx) { this.model = require('node:fs').readFileSync(require('node:path').join(ctx.weights.path, 'model.txt'), 'utf8'); }
  async handle(input) { return { model: this.model, n: input.n }; }
});
exports.odd = cls({}, class {
  async handle(input) { return input.n === 0 ? undefined : { big: BigInt(input.n) }; }
});
exports.broken = cls({}, class {
  async setup() { throw new TypeError('no GPU in here'); }
  async handle() { return 1; }
});
`;

function manifestFor(exportName: string): ShimManifest {
  return {
    v: 1,
    service: 'unit',
    function: 'echo',
    export: exportName,
    bundle: './bundle.js',
    contract: {
      input: {
        type: 'object',
        properties: { n: { type: 'number' }, fail: { type: 'string' }, sleep: { type: 'number' }, vec: { 'x-typedArray': 'Float32Array' } },
        required: ['n'],
        additionalProperties: false,
      },
      output: {},
    },
    concurrency: 1,
    timeoutMs: 30_000,
    weightsPath: '/weights/echo',
  };
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('runBatchJob (batch mode of the container)', function () {
  this.timeout(60_000);
  let dir = '';
  let manifestFile = '';
  let s3rver: S3rver;
  let endpoint = '';
  let s3: S3Client;
  let lines: string[] = [];
  let counter = 0;

  const baseEnv = (): Record<string, string> => ({
    SGPU_CALL_BUCKET: BUCKET,
    SGPU_CALL_PREFIX: PREFIX,
    AWS_ENDPOINT_URL_S3: endpoint,
    AWS_ACCESS_KEY_ID: 'S3RVER',
    AWS_SECRET_ACCESS_KEY: 'S3RVER',
    AWS_REGION: 'us-east-1',
  });
  const put = (key: string, value: unknown): Promise<unknown> =>
    s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: JSON.stringify(value), ContentType: 'application/json' }));
  const get = async (key: string): Promise<unknown> => {
    try {
      const reply = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
      return JSON.parse(await reply.Body!.transformToString());
    } catch (error) {
      if ((error as Error).name === 'NoSuchKey') return undefined;
      throw error;
    }
  };
  const run = (env: BatchEnv, exportName = 'echo'): Promise<number> => {
    lines = [];
    return runBatchJob(manifestFor(exportName), manifestFile, env, { log: (line) => lines.push(line) });
  };
  /** Writes an input under a new call id and returns that id. */
  const newCall = async (input: unknown, index?: number): Promise<string> => {
    const callId = `call-${process.pid}-${++counter}`;
    await put(callKey(PREFIX, callId, 'input', index), encodeValue(input));
    return callId;
  };

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sgpu-batch-runner-'));
    fs.writeFileSync(path.join(dir, 'bundle.js'), BUNDLE(path.join(__dirname, 'runtime.js')));
    manifestFile = path.join(dir, 'manifest.json');
    fs.writeFileSync(manifestFile, JSON.stringify(manifestFor('echo')));
    fs.mkdirSync(path.join(dir, 's3'));
    s3rver = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory: path.join(dir, 's3'), configureBuckets: [{ name: BUCKET, configs: [] }, { name: 'weights', configs: [] }] });
    const address = await s3rver.run();
    endpoint = `http://127.0.0.1:${address.port}`;
    s3 = new S3Client({ region: 'us-east-1', endpoint, forcePathStyle: true, credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } });
  });

  after(async () => {
    s3?.destroy();
    await s3rver?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('reads the input, runs setup then the handler, writes output.json and exits 0', async () => {
    const callId = await newCall({ n: 21, vec: new Float32Array([1.5, -2]) });
    const code = await run({ ...baseEnv(), SGPU_CALL_ID: callId });
    assert.equal(code, EXIT_SUCCEEDED, lines.join('\n'));
    const output = decodeValue(await get(callKey(PREFIX, callId, 'output'))) as { doubled: number; callId: string; weights: string; scaled: Float32Array };
    assert.equal(output.doubled, 42);
    assert.equal(output.callId, callId);
    assert.equal(output.weights, '/weights/echo');
    assert.ok(output.scaled instanceof Float32Array);
    assert.deepEqual([...output.scaled], [3, -4]);
    assert.equal(await get(callKey(PREFIX, callId, 'error')), undefined);
    assert.ok(lines.some((line) => /^setup finished in \d+ ms$/.test(line)), lines.join('\n'));
    assert.ok(lines.some((line) => line === 'setup: loading'));
  });

  it('runs one child of an array job from input-<index>.json to output-<index>.json', async () => {
    const callId = await newCall({ n: 5 }, 3);
    const code = await run({ ...baseEnv(), SGPU_CALL_ID: callId, AWS_BATCH_JOB_ARRAY_INDEX: '3', SGPU_WEIGHTS_PATH: '/tmp/w' });
    assert.equal(code, EXIT_SUCCEEDED, lines.join('\n'));
    assert.deepEqual(await get(callKey(PREFIX, callId, 'output', 3)), { doubled: 10, callId: `${callId}-3`, weights: '/tmp/w' });
    assert.equal(await get(callKey(PREFIX, callId, 'output')), undefined);
  });

  it('refuses an input that breaks the contract with a ValidationError and exit 1', async () => {
    const callId = await newCall({ n: 'seven' });
    assert.equal(await run({ ...baseEnv(), SGPU_CALL_ID: callId }), EXIT_FAILED);
    const error = (await get(callKey(PREFIX, callId, 'error'))) as { type: string; path: string; message: string };
    assert.equal(error.type, 'ValidationError');
    assert.equal(error.path, '/n');
    assert.match(error.message, /input at \/n must be number/);
    assert.equal(await get(callKey(PREFIX, callId, 'output')), undefined);
  });

  it('reports a handler that throws as a HandlerError with its name and stack, exit 1', async () => {
    const callId = await newCall({ n: 1, fail: 'this' });
    assert.equal(await run({ ...baseEnv(), SGPU_CALL_ID: callId }), EXIT_FAILED);
    const error = (await get(callKey(PREFIX, callId, 'error'))) as { type: string; name: string; message: string; stack: string };
    assert.equal(error.type, 'HandlerError');
    assert.equal(error.name, 'RangeError');
    assert.equal(error.message, 'cannot take this');
    assert.match(error.stack, /RangeError: cannot take this\n\s+at .*handle/);
  });

  it('reports a setup that throws, exit 1', async () => {
    const callId = await newCall({ n: 1 });
    assert.equal(await run({ ...baseEnv(), SGPU_CALL_ID: callId }, 'broken'), EXIT_FAILED);
    const error = (await get(callKey(PREFIX, callId, 'error'))) as { type: string; name: string; message: string };
    assert.equal(error.type, 'HandlerError');
    assert.equal(error.name, 'TypeError');
    assert.equal(error.message, 'setup failed: no GPU in here');
  });

  it('writes null for an undefined output, and fails an output JSON cannot carry without retry', async () => {
    const empty = await newCall({ n: 0 });
    assert.equal(await run({ ...baseEnv(), SGPU_CALL_ID: empty }, 'odd'), EXIT_SUCCEEDED, lines.join('\n'));
    assert.equal(await get(callKey(PREFIX, empty, 'output')), null);

    const big = await newCall({ n: 3 });
    assert.equal(await run({ ...baseEnv(), SGPU_CALL_ID: big }, 'odd'), EXIT_FAILED, lines.join('\n'));
    const error = (await get(callKey(PREFIX, big, 'error'))) as { type: string; message: string };
    assert.equal(error.type, 'HandlerError');
    assert.match(error.message, /output cannot be sent as JSON: .*BigInt/);
    assert.equal(await get(callKey(PREFIX, big, 'output')), undefined);
  });

  it('stops a call at its deadline (the lesser of the function timeout and SGPU_TIMEOUT_MS) with a Timeout', async () => {
    const callId = await newCall({ n: 1, sleep: 10_000 });
    const started = Date.now();
    assert.equal(await run({ ...baseEnv(), SGPU_CALL_ID: callId, SGPU_TIMEOUT_MS: '1500' }), EXIT_FAILED);
    assert.ok(Date.now() - started < 5_000, `took ${Date.now() - started} ms`);
    const error = (await get(callKey(PREFIX, callId, 'error'))) as { type: string; message: string };
    assert.equal(error.type, 'Timeout');
    assert.match(error.message, /deadline of 1500 ms/);
  });

  it('fails without retry when the input is missing or the job environment is incomplete', async () => {
    assert.equal(await run({ ...baseEnv(), SGPU_CALL_ID: 'never-written' }), EXIT_FAILED);
    const error = (await get(callKey(PREFIX, 'never-written', 'error'))) as { type: string; message: string };
    assert.equal(error.type, 'BadRequest');
    assert.match(error.message, /no input at s3:\/\/calls\/calls\/unit\/test\/echo\/never-written\/input\.json/);

    const { SGPU_CALL_PREFIX: _omitted, ...incomplete } = baseEnv();
    assert.equal(await run({ ...incomplete, SGPU_CALL_ID: 'x' }), EXIT_FAILED);
    assert.match(lines.join('\n'), /SGPU_CALL_PREFIX is not set/);
  });

  describe('with weights (SGPU_WEIGHTS_BUCKET)', () => {
    const AWS_ENV = ['AWS_ENDPOINT_URL_S3', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_REGION'];
    const saved: Record<string, string | undefined> = {};

    before(async () => {
      // weights-fetch's store takes its endpoint and credentials from the process, as in a container.
      for (const name of AWS_ENV) saved[name] = process.env[name];
      Object.assign(process.env, { AWS_ENDPOINT_URL_S3: endpoint, AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER', AWS_REGION: 'us-east-1' });
      const source = path.join(dir, 'weights-source');
      fs.mkdirSync(source);
      fs.writeFileSync(path.join(source, 'model.txt'), 'logistic regression, 20 epochs');
      await syncWeights({ store: new S3Store({ bucket: 'weights', client: s3 }), prefix: 'echo/v1', source });
    });

    after(() => {
      for (const name of AWS_ENV) {
        if (saved[name] === undefined) delete process.env[name];
        else process.env[name] = saved[name];
      }
    });

    it('fetches the weights into the weights path before setup', async () => {
      const callId = await newCall({ n: 2 });
      const weightsPath = path.join(dir, 'weights-here');
      const env = { ...baseEnv(), SGPU_CALL_ID: callId, SGPU_WEIGHTS_BUCKET: 'weights', SGPU_WEIGHTS_PREFIX: 'echo/v1', SGPU_WEIGHTS_PATH: weightsPath };
      assert.equal(await run(env, 'weighted'), EXIT_SUCCEEDED, lines.join('\n'));
      assert.deepEqual(await get(callKey(PREFIX, callId, 'output')), { model: 'logistic regression, 20 epochs', n: 2 });
      const fetchedAt = lines.findIndex((line) => /^weights echo\/v1@\S+: fetched 1 file\(s\)/.test(line));
      const setupAt = lines.findIndex((line) => line.startsWith('setup finished'));
      assert.ok(fetchedAt >= 0 && fetchedAt < setupAt, lines.join('\n'));
    });

    it('fails without retry when no weights were synced under the prefix', async () => {
      const callId = await newCall({ n: 2 });
      const env = { ...baseEnv(), SGPU_CALL_ID: callId, SGPU_WEIGHTS_BUCKET: 'weights', SGPU_WEIGHTS_PREFIX: 'echo/none', SGPU_WEIGHTS_PATH: path.join(dir, 'w2') };
      assert.equal(await run(env, 'weighted'), EXIT_FAILED, lines.join('\n'));
      const error = (await get(callKey(PREFIX, callId, 'error'))) as { type: string; message: string };
      assert.equal(error.type, 'NotReady');
      assert.match(error.message, /cannot fetch the weights: no weights synced under s3:\/\/weights\/echo\/none/);
    });
  });

  it('exits 75 (retryable) when the store cannot be reached', async () => {
    const closed = await freePort();
    const started = Date.now();
    const code = await run({ ...baseEnv(), AWS_ENDPOINT_URL_S3: `http://127.0.0.1:${closed}`, SGPU_CALL_ID: 'unreachable' });
    assert.equal(code, EXIT_RETRYABLE, lines.join('\n'));
    assert.ok(Date.now() - started < 20_000, `took ${Date.now() - started} ms`);
    assert.match(lines.join('\n'), /cannot read s3:\/\/calls\/calls\/unit\/test\/echo\/unreachable\/input\.json: .*ECONNREFUSED/);
  });
});

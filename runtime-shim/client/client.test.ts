import assert from 'node:assert/strict';
import http from 'node:http';
import { fn } from '../runtime';
import { Shim } from '../server';
import type { GpuFunction } from '../types';
import { MapError, RemoteError, boundedAll, bindFunction, isRemoteError, type Deployment } from './index';

const ENV_VAR = 'SERVERLESS_GPU_ENDPOINT_F';

const shims: Shim[] = [];
const rawServers: http.Server[] = [];

async function startShim(
  handler: GpuFunction<never, unknown>,
  options: { concurrency?: number; timeoutMs?: number; inputSchema?: object } = {},
): Promise<string> {
  const shim = new Shim({
    functionName: 'f',
    fn: handler as unknown as GpuFunction<unknown, unknown>,
    concurrency: options.concurrency ?? 8,
    timeoutMs: options.timeoutMs ?? 5_000,
    inputSchema: options.inputSchema,
    weightsPath: '/tmp/weights',
    log: () => undefined,
  });
  shims.push(shim);
  const port = await shim.listen(0, '127.0.0.1');
  await shim.ready;
  return `http://127.0.0.1:${port}`;
}

/** A plain HTTP server on loopback that answers each request with `answer(n)` (n counts from 1). */
async function startRaw(answer: (n: number) => { status: number; body: unknown }): Promise<{ url: string; requests: () => number }> {
  let count = 0;
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      count += 1;
      const { status, body } = answer(count);
      const text = JSON.stringify(body);
      res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
      res.end(text);
    });
  });
  rawServers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return { url: `http://127.0.0.1:${port}`, requests: () => count };
}

function deployment(endpoints: readonly string[]): Deployment {
  return { service: 's', stage: 't', functions: { f: { target: 'local', endpoints } } };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function gate(): { opened: Promise<void>; open: () => void } {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { opened, open };
}

/** Waits `ms`, or less if the signal aborts. */
function abortableWait(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

describe('client (bindFunction) against a real shim', function () {
  this.timeout(2_000);

  let savedEnv: string | undefined;

  beforeEach(() => {
    savedEnv = process.env[ENV_VAR];
    delete process.env[ENV_VAR];
  });

  afterEach(async () => {
    if (savedEnv === undefined) delete process.env[ENV_VAR];
    else process.env[ENV_VAR] = savedEnv;
    for (const shim of shims.splice(0)) await shim.drain(100);
    for (const server of rawServers.splice(0)) {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  describe('remote', () => {
    it('returns the output of the remote handler', async () => {
      const url = await startShim(fn<{ n: number }, { doubled: number }>({}, (input) => ({ doubled: input.n * 2 })));
      const f = bindFunction<{ n: number }, { doubled: number }>(deployment([url]), 'f');
      assert.equal(f.name, 'f');
      assert.deepEqual(await f.remote({ n: 21 }), { doubled: 42 });
    });

    it('sends and receives typed arrays as typed arrays', async () => {
      const url = await startShim(
        fn<{ vec: Float32Array }, { out: Float32Array; kind: string }>({}, (input) => ({
          out: input.vec.map((x) => x + 1),
          kind: input.vec.constructor.name,
        })),
      );
      const f = bindFunction<{ vec: Float32Array }, { out: Float32Array; kind: string }>(deployment([url]), 'f');
      const result = await f.remote({ vec: new Float32Array([0.5, 1.5]) });
      assert.equal(result.kind, 'Float32Array');
      assert.ok(result.out instanceof Float32Array);
      assert.deepEqual([...result.out], [1.5, 2.5]);
    });

    it('rejects with a RemoteError carrying type, path and remote error name', async () => {
      const url = await startShim(
        fn<{ text: string }, never>({}, function failingHandler() {
          throw new RangeError('too long');
        }),
        { inputSchema: { type: 'object', required: ['text'], properties: { text: { type: 'string' } } } },
      );
      const f = bindFunction<{ text: string }, never>(deployment([url]), 'f');

      const invalid = await f.remote({ text: 3 as unknown as string }).then(
        () => assert.fail('an invalid input must be refused'),
        (error: unknown) => error,
      );
      assert.ok(invalid instanceof RemoteError);
      assert.equal(invalid.type, 'ValidationError');
      assert.equal(invalid.path, '/text');
      assert.equal(invalid.status, 400);

      const thrown = await f.remote({ text: 'x' }).then(
        () => assert.fail('the handler threw'),
        (error: unknown) => error,
      );
      assert.ok(thrown instanceof RemoteError);
      assert.equal(thrown.type, 'HandlerError');
      assert.equal(thrown.remoteName, 'RangeError');
      assert.match(thrown.message, /too long/);
      assert.match(thrown.remoteStack ?? '', /failingHandler/);
    });
  });

  describe('map', () => {
    it('returns outputs in input order even when later items finish first, with at most `concurrency` in flight', async () => {
      let running = 0;
      let most = 0;
      const finishedOrder: number[] = [];
      const url = await startShim(
        fn<number, string>({}, async (index) => {
          running += 1;
          most = Math.max(most, running);
          await sleep((6 - index) * 15);
          running -= 1;
          finishedOrder.push(index);
          return `out-${index}`;
        }),
        { concurrency: 16 },
      );
      const f = bindFunction<number, string>(deployment([url]), 'f');
      const outputs = await f.map([0, 1, 2, 3, 4, 5], { concurrency: 3 });
      assert.deepEqual(outputs, ['out-0', 'out-1', 'out-2', 'out-3', 'out-4', 'out-5']);
      assert.notDeepEqual(finishedOrder, [0, 1, 2, 3, 4, 5], 'the handler must finish items out of order for this test to mean anything');
      assert.ok(most <= 3, `${most} calls were in flight with concurrency 3`);
      assert.equal(most, 3, 'map should use its full concurrency');
    });

    it('throws MapError keeping every item: the successes and the failing index', async () => {
      const url = await startShim(
        fn<number, number>({}, (n) => {
          if (n === 2) throw new Error(`item ${n} is bad`);
          return n * n;
        }),
      );
      const f = bindFunction<number, number>(deployment([url]), 'f');
      const error = await f.map([0, 1, 2, 3, 4], { concurrency: 2 }).then(
        () => assert.fail('map must throw when an item failed'),
        (e: unknown) => e,
      );
      assert.ok(error instanceof MapError);
      assert.equal(error.results.length, 5);
      assert.deepEqual(
        error.succeeded.map((s) => [s.index, s.value]),
        [
          [0, 0],
          [1, 1],
          [3, 9],
          [4, 16],
        ],
      );
      assert.deepEqual(
        error.failed.map((x) => x.index),
        [2],
      );
      assert.ok(error.failed[0].error instanceof RemoteError);
      assert.equal(error.failed[0].error.type, 'HandlerError');
      assert.match(error.failed[0].error.message, /item 2 is bad/);
      assert.deepEqual(error.results[4], { ok: true, value: 16 });
    });

    it('mapSettled returns every outcome in order without throwing', async () => {
      const url = await startShim(
        fn<number, number>({}, (n) => {
          if (n % 2 === 1) throw new Error(`odd ${n}`);
          return n + 1;
        }),
      );
      const f = bindFunction<number, number>(deployment([url]), 'f');
      const settled = await f.mapSettled([0, 1, 2, 3]);
      assert.equal(settled.length, 4);
      assert.deepEqual(settled[0], { ok: true, value: 1 });
      assert.deepEqual(settled[2], { ok: true, value: 3 });
      for (const i of [1, 3]) {
        const item = settled[i];
        assert.equal(item.ok, false);
        if (!item.ok) {
          assert.equal(item.error.type, 'HandlerError');
          assert.match(item.error.message, new RegExp(`odd ${i}`));
        }
      }
    });
  });

  describe('spawn', () => {
    it('returns a handle whose status goes from running to succeeded and whose get() returns the output', async () => {
      const release = gate();
      const url = await startShim(
        fn<{ n: number }, { n: number }>({}, async (input) => {
          await release.opened;
          return { n: input.n + 1 };
        }),
      );
      const f = bindFunction<{ n: number }, { n: number }>(deployment([url]), 'f');
      const call = await f.spawn({ n: 41 });
      assert.equal(typeof call.id, 'string');
      assert.ok(call.id.length > 0);
      assert.equal(await call.status(), 'running');
      release.open();
      assert.deepEqual(await call.get({ timeout: 1_000 }), { n: 42 });
      assert.equal(await call.status(), 'succeeded');
    });

    it('get() rejects with the RemoteError of a spawned call that failed', async () => {
      const url = await startShim(
        fn<null, never>({}, async () => {
          throw new Error('out of memory');
        }),
      );
      const f = bindFunction<null, never>(deployment([url]), 'f');
      const call = await f.spawn(null);
      await assert.rejects(call.get({ timeout: 1_000 }), (error: unknown) => {
        assert.ok(error instanceof RemoteError);
        assert.equal(error.type, 'HandlerError');
        assert.match(error.message, /out of memory/);
        return true;
      });
      assert.equal(await call.status(), 'failed');
    });

    it('get({ timeout: 50 }) on a slow call rejects with a RemoteError of type Timeout', async () => {
      const url = await startShim(fn<null, string>({}, async (_input, ctx) => abortableWait(1_000, ctx.signal).then(() => 'late')));
      const f = bindFunction<null, string>(deployment([url]), 'f');
      const call = await f.spawn(null);
      const t0 = Date.now();
      await assert.rejects(call.get({ timeout: 50 }), (error: unknown) => {
        assert.ok(error instanceof RemoteError);
        assert.equal(error.type, 'Timeout');
        return true;
      });
      assert.ok(Date.now() - t0 < 500, `get() waited ${Date.now() - t0} ms for a 50 ms timeout`);
    });
  });

  describe('retries', () => {
    it('retries a 503 NotReady answer and resolves once the remote serves, after exactly 3 requests', async () => {
      const raw = await startRaw((n) =>
        n <= 2
          ? { status: 503, body: { v: 1, kind: 'error', error: { type: 'NotReady', message: 'starting' } } }
          : { status: 200, body: { v: 1, kind: 'result', output: { ok: true } } },
      );
      const f = bindFunction<null, { ok: boolean }>(deployment([raw.url]), 'f');
      assert.deepEqual(await f.remote(null), { ok: true });
      assert.equal(raw.requests(), 3);
    });

    it('does not retry a HandlerError (500): the remote sees one request', async () => {
      const raw = await startRaw(() => ({
        status: 500,
        body: { v: 1, kind: 'error', error: { type: 'HandlerError', message: 'boom', name: 'Error' } },
      }));
      const f = bindFunction<null, never>(deployment([raw.url]), 'f');
      await assert.rejects(f.remote(null), (error: unknown) => {
        assert.ok(error instanceof RemoteError);
        assert.equal(error.type, 'HandlerError');
        assert.equal(error.status, 500);
        return true;
      });
      await sleep(150); // a retry, had there been one, would have arrived by now
      assert.equal(raw.requests(), 1);
    });
  });

  describe('endpoints', () => {
    it('uses SERVERLESS_GPU_ENDPOINT_F when the deployment has no endpoints', async () => {
      const url = await startShim(fn({}, () => 'from env endpoint'));
      process.env[ENV_VAR] = url;
      const f = bindFunction<null, string>(deployment([]), 'f');
      assert.equal(await f.remote(null), 'from env endpoint');
    });

    it('lets .with({ endpoint }) override both the deployment and the environment', async () => {
      const deployed = await startShim(fn({}, () => 'deployed'));
      const fromEnv = await startShim(fn({}, () => 'env'));
      const chosen = await startShim(fn({}, () => 'chosen'));
      const f = bindFunction<null, string>(deployment([deployed]), 'f');
      assert.equal(await f.remote(null), 'deployed');
      process.env[ENV_VAR] = fromEnv;
      assert.equal(await f.with({}).remote(null), 'env');
      assert.equal(await f.with({ endpoint: chosen }).remote(null), 'chosen');
      assert.equal(await bindFunction<null, string>(deployment([]), 'f').with({ endpoint: [chosen] }).remote(null), 'chosen');
    });

    it('rejects with RemoteError Unreachable telling to deploy when no endpoint is known', async () => {
      const f = bindFunction<null, string>(deployment([]), 'f');
      await assert.rejects(f.remote(null), (error: unknown) => {
        assert.ok(error instanceof RemoteError);
        assert.equal(error.type, 'Unreachable');
        assert.match(error.message, /deploy/);
        return true;
      });
    });
  });
});

describe('client helpers', function () {
  this.timeout(2_000);

  it('isRemoteError is true for a RemoteError and false for a plain Error or non-errors', () => {
    assert.equal(isRemoteError(new RemoteError('f', { type: 'Timeout', message: 'late' })), true);
    assert.equal(isRemoteError(new Error('plain')), false);
    assert.equal(isRemoteError({ name: 'RemoteError', functionName: 'f' }), false);
    assert.equal(isRemoteError(undefined), false);
  });

  it('boundedAll rejects concurrency 0 with a RangeError and runs nothing', async () => {
    let ran = 0;
    await assert.rejects(
      boundedAll([1, 2, 3], 0, async (x) => {
        ran += 1;
        return x;
      }),
      RangeError,
    );
    assert.equal(ran, 0);
  });

  it('boundedAll keeps results in input order and never exceeds its limit', async () => {
    let running = 0;
    let most = 0;
    const results = await boundedAll([30, 5, 20, 1, 10], 2, async (ms, index) => {
      running += 1;
      most = Math.max(most, running);
      await sleep(ms);
      running -= 1;
      return index;
    });
    assert.deepEqual(results, [0, 1, 2, 3, 4]);
    assert.equal(most, 2);
  });
});

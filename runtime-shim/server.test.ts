import assert from 'node:assert/strict';
import { decodeValue, encodeValue } from './protocol';
import { cls, fn } from './runtime';
import { Shim, type ShimOptions } from './server';
import type { Context, GpuFunction } from './types';

interface Reply {
  status: number;
  body: {
    v: number;
    kind: string;
    output?: unknown;
    id?: string;
    status?: string;
    error?: { type: string; message: string; path?: string; name?: string; stack?: string };
  };
}

type TestShimOptions = Partial<Omit<ShimOptions, 'fn'>> & { fn: GpuFunction<never, unknown> };

const started: Shim[] = [];

async function start(options: TestShimOptions): Promise<{ shim: Shim; url: string }> {
  const shim = new Shim({
    functionName: 'f',
    concurrency: 4,
    timeoutMs: 5_000,
    weightsPath: '/tmp/weights',
    log: () => undefined,
    ...options,
    fn: options.fn as unknown as GpuFunction<unknown, unknown>,
  });
  started.push(shim);
  const port = await shim.listen(0, '127.0.0.1');
  return { shim, url: `http://127.0.0.1:${port}` };
}

async function request(url: string, init?: RequestInit): Promise<Reply> {
  const response = await fetch(url, { ...init, signal: AbortSignal.timeout(3_000) });
  return { status: response.status, body: (await response.json()) as Reply['body'] };
}

function call(url: string, input: unknown, extra: Record<string, unknown> = {}, path = '/v1/call'): Promise<Reply> {
  return request(`${url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ v: 1, kind: 'call', input, ...extra }),
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `condition` every 5 ms; fails after `ms`. */
async function waitFor(condition: () => boolean, what: string, ms = 1_000): Promise<void> {
  const until = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

/** A promise and the function that resolves it. */
function gate(): { opened: Promise<void>; open: () => void } {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { opened, open };
}

/** Waits `ms`, or less if the call's signal aborts; returns whether it was aborted. */
function abortableWait(ms: number, signal: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve(true);
    const timer = setTimeout(() => resolve(false), ms);
    signal.addEventListener('abort', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

describe('Shim (runtime-shim/server)', function () {
  this.timeout(2_000);

  afterEach(async () => {
    for (const shim of started.splice(0)) await shim.drain(100);
  });

  describe('setup and health', () => {
    it('answers 503 on /healthz and NotReady to calls until an async setup has finished, then 200 and serves', async () => {
      const setupDone = gate();
      const service = cls<{ x: number }, { x: number; model: string }>(
        {},
        class {
          model = 'none';
          async setup(): Promise<void> {
            await setupDone.opened;
            this.model = 'loaded';
          }
          handle(input: { x: number }) {
            return { x: input.x, model: this.model };
          }
        },
      );
      const { shim, url } = await start({ fn: service });

      const before = await request(`${url}/healthz`);
      assert.equal(before.status, 503);
      const early = await call(url, { x: 1 });
      assert.equal(early.status, 503);
      assert.equal(early.body.kind, 'error');
      assert.equal(early.body.error?.type, 'NotReady');

      setupDone.open();
      await shim.ready;

      const after = await request(`${url}/healthz`);
      assert.equal(after.status, 200);
      const served = await call(url, { x: 2 });
      assert.equal(served.status, 200);
      assert.deepEqual(served.body, { v: 1, kind: 'result', output: { x: 2, model: 'loaded' } });
    });

    it('answers NotReady naming the cause when setup failed, and /healthz stays 503', async () => {
      const broken = cls(
        {},
        class {
          async setup(): Promise<void> {
            throw new Error('weights missing');
          }
          handle() {
            return 'never';
          }
        },
      );
      const { shim, url } = await start({ fn: broken });
      await assert.rejects(shim.ready, /weights missing/);
      assert.equal((await request(`${url}/healthz`)).status, 503);
      const reply = await call(url, {});
      assert.equal(reply.status, 503);
      assert.equal(reply.body.error?.type, 'NotReady');
      assert.match(reply.body.error?.message ?? '', /weights missing/);
    });

    it('runs a cls() setup exactly once across many calls, and every call sees the same instance', async () => {
      let setups = 0;
      let instances = 0;
      const service = cls<number, { instance: number; setups: number }>(
        {},
        class {
          readonly id = ++instances;
          async setup(): Promise<void> {
            setups += 1;
            await sleep(10);
          }
          async handle() {
            await sleep(5);
            return { instance: this.id, setups };
          }
        },
      );
      const { shim, url } = await start({ fn: service, concurrency: 3 });
      await shim.ready;
      const replies = await Promise.all(Array.from({ length: 12 }, (_, i) => call(url, i)));
      for (const reply of replies) {
        assert.equal(reply.status, 200);
        assert.deepEqual(reply.body.output, { instance: 1, setups: 1 });
      }
      assert.equal(setups, 1);
      assert.equal(instances, 1);
    });
  });

  describe('input validation', () => {
    const schema = {
      type: 'object',
      required: ['items'],
      additionalProperties: false,
      properties: {
        items: {
          type: 'array',
          items: { type: 'object', required: ['text'], properties: { text: { type: 'string' } } },
        },
      },
    };

    it('answers 400 ValidationError with the path of the bad field, without running the handler, then serves a good call', async () => {
      const seen: unknown[] = [];
      const handler = fn<{ items: Array<{ text: string }> }, number>({}, (input) => {
        seen.push(input);
        return input.items.length;
      });
      const { shim, url } = await start({ fn: handler, inputSchema: schema });
      await shim.ready;

      const wrongType = await call(url, { items: [{ text: 'ok' }, { text: 5 }] });
      assert.equal(wrongType.status, 400);
      assert.equal(wrongType.body.error?.type, 'ValidationError');
      assert.equal(wrongType.body.error?.path, '/items/1/text');
      assert.match(wrongType.body.error?.message ?? '', /\/items\/1\/text/);

      const missing = await call(url, { items: [{ text: 'ok' }, {}] });
      assert.equal(missing.status, 400);
      assert.equal(missing.body.error?.type, 'ValidationError');
      assert.equal(missing.body.error?.path, '/items/1/text');

      const unknown = await call(url, { items: [], extra: true });
      assert.equal(unknown.status, 400);
      assert.equal(unknown.body.error?.path, '/extra');

      assert.equal(seen.length, 0, 'the handler must not run for an invalid input');

      const good = await call(url, { items: [{ text: 'a' }, { text: 'b' }] });
      assert.equal(good.status, 200);
      assert.equal(good.body.output, 2);
      assert.equal(seen.length, 1);
    });

    it('answers 400 BadRequest to a body that is not a v1 call envelope', async () => {
      const { shim, url } = await start({ fn: fn({}, () => 'never') });
      await shim.ready;
      const notJson = await request(`${url}/v1/call`, { method: 'POST', body: '{nope' });
      assert.equal(notJson.status, 400);
      assert.equal(notJson.body.error?.type, 'BadRequest');
      const wrongVersion = await request(`${url}/v1/call`, { method: 'POST', body: JSON.stringify({ v: 2, kind: 'call', input: 1 }) });
      assert.equal(wrongVersion.status, 400);
      assert.equal(wrongVersion.body.error?.type, 'BadRequest');
    });
  });

  describe('handler errors', () => {
    it('reports a RangeError thrown by the handler as 500 HandlerError with its message, name and a stack through the handler', async () => {
      const handler = fn<{ n: number }, never>({}, function explodingHandler(input) {
        throw new RangeError(`n out of range: ${input.n}`);
      });
      const { shim, url } = await start({ fn: handler });
      await shim.ready;
      const reply = await call(url, { n: 7 });
      assert.equal(reply.status, 500);
      assert.equal(reply.body.kind, 'error');
      assert.equal(reply.body.error?.type, 'HandlerError');
      assert.equal(reply.body.error?.message, 'n out of range: 7');
      assert.equal(reply.body.error?.name, 'RangeError');
      assert.match(reply.body.error?.stack ?? '', /explodingHandler/);
    });
  });

  describe('concurrency', () => {
    it('never runs more than `concurrency` calls at once, and every queued call still succeeds', async () => {
      let running = 0;
      let most = 0;
      const handler = fn<number, number>({}, async (input) => {
        running += 1;
        most = Math.max(most, running);
        await sleep(60);
        running -= 1;
        return input * 10;
      });
      const { shim, url } = await start({ fn: handler, concurrency: 2 });
      await shim.ready;
      const replies = await Promise.all([0, 1, 2, 3, 4, 5].map((i) => call(url, i)));
      assert.deepEqual(
        replies.map((r) => r.status),
        [200, 200, 200, 200, 200, 200],
      );
      assert.deepEqual(
        replies.map((r) => r.body.output),
        [0, 10, 20, 30, 40, 50],
      );
      assert.equal(most, 2, `at most 2 calls may run at once (and 2 should), saw ${most}`);
      assert.equal(shim.inFlight, 0);
    });

    it('refuses calls beyond running + queued with 429 Overloaded, and serves the admitted ones', async () => {
      const release = gate();
      let started = 0;
      const handler = fn<number, number>({}, async (input) => {
        started += 1;
        await release.opened;
        return input;
      });
      const { shim, url } = await start({ fn: handler, concurrency: 1, queueLimit: 1 });
      await shim.ready;

      const first = call(url, 1);
      await waitFor(() => started === 1, 'the first call to start');
      const second = call(url, 2);
      await waitFor(() => shim.inFlight === 2, 'the second call to be queued');

      const extra = await Promise.all([call(url, 3), call(url, 4)]);
      for (const reply of extra) {
        assert.equal(reply.status, 429);
        assert.equal(reply.body.error?.type, 'Overloaded');
      }
      assert.equal(started, 1, 'the queued call must wait for the running one');

      release.open();
      const admitted = await Promise.all([first, second]);
      assert.deepEqual(
        admitted.map((r) => [r.status, r.body.output]),
        [
          [200, 1],
          [200, 2],
        ],
      );
      assert.equal(started, 2, 'refused calls must not have run');
    });
  });

  describe('deadlines', () => {
    it('answers 504 Timeout when the handler runs past timeoutMs, and aborts ctx.signal', async () => {
      let signal: AbortSignal | undefined;
      const handler = fn<null, string>({}, async (_input, ctx: Context) => {
        signal = ctx.signal;
        await abortableWait(1_000, ctx.signal);
        return 'too late';
      });
      const { shim, url } = await start({ fn: handler, timeoutMs: 100 });
      await shim.ready;
      const t0 = Date.now();
      const reply = await call(url, null);
      const elapsed = Date.now() - t0;
      assert.equal(reply.status, 504);
      assert.equal(reply.body.error?.type, 'Timeout');
      assert.ok(elapsed >= 90 && elapsed < 800, `answered after ${elapsed} ms`);
      assert.ok(signal, 'the handler ran');
      assert.equal(signal.aborted, true);
    });

    it('uses a shorter timeoutMs given in the call envelope, but never a longer one', async () => {
      const handler = fn<null, string>({}, async (_input, ctx: Context) => {
        const aborted = await abortableWait(1_000, ctx.signal);
        return aborted ? 'aborted' : 'done';
      });
      const { shim, url } = await start({ fn: handler, timeoutMs: 5_000 });
      await shim.ready;

      let t0 = Date.now();
      const shortened = await call(url, null, { timeoutMs: 100 });
      let elapsed = Date.now() - t0;
      assert.equal(shortened.status, 504);
      assert.equal(shortened.body.error?.type, 'Timeout');
      assert.ok(elapsed < 800, `the per-call deadline was not used: answered after ${elapsed} ms`);

      const { shim: strict, url: strictUrl } = await start({ fn: handler, timeoutMs: 100 });
      await strict.ready;
      t0 = Date.now();
      const lengthened = await call(strictUrl, null, { timeoutMs: 60_000 });
      elapsed = Date.now() - t0;
      assert.equal(lengthened.status, 504);
      assert.ok(elapsed < 800, `a longer per-call deadline extended the container's: ${elapsed} ms`);
    });
  });

  describe('drain', () => {
    it('lets the calls in flight finish and answer 200, refuses new calls, and resolves 0 only after they finish', async () => {
      const release = gate();
      let started = 0;
      let finished = 0;
      const handler = fn<number, number>({}, async (input) => {
        started += 1;
        await release.opened;
        await sleep(20);
        finished += 1;
        return input + 100;
      });
      const { shim, url } = await start({ fn: handler, concurrency: 4 });
      await shim.ready;

      const inFlight = [1, 2, 3].map((i) => call(url, i));
      await waitFor(() => started === 3, 'three calls to start');

      let drainedWith: number | undefined;
      let finishedWhenDrained = -1;
      const drained = shim.drain(1_500).then((left) => {
        drainedWith = left;
        finishedWhenDrained = finished;
      });

      await sleep(30);
      assert.equal(drainedWith, undefined, 'drain resolved while calls were still running');

      // A call sent after drain started is refused: either the listener is closed or the shim says ShuttingDown.
      const late = await call(url, 4).then(
        (reply) => ({ reply }),
        (error: unknown) => ({ error: error as Error & { cause?: { code?: string } } }),
      );
      if ('reply' in late) {
        assert.equal(late.reply.status, 503);
        assert.equal(late.reply.body.error?.type, 'ShuttingDown');
      } else {
        assert.equal(late.error.cause?.code, 'ECONNREFUSED', `unexpected failure: ${late.error.message}`);
      }
      assert.equal(started, 3, 'the late call must not run');

      release.open();
      const replies = await Promise.all(inFlight);
      await drained;
      assert.deepEqual(
        replies.map((r) => [r.status, r.body.output]),
        [
          [200, 101],
          [200, 102],
          [200, 103],
        ],
      );
      assert.equal(drainedWith, 0);
      assert.equal(finishedWhenDrained, 3, 'drain resolved before every call had finished');
    });

    it('resolves drain at once with 0 when nothing is running', async () => {
      const { shim } = await start({ fn: fn({}, () => 1) });
      await shim.ready;
      const t0 = Date.now();
      assert.equal(await shim.drain(1_000), 0);
      assert.ok(Date.now() - t0 < 500);
    });
  });

  describe('binary values', () => {
    it('hands the handler real typed arrays and sends a Float32Array output back tagged $typed', async () => {
      const seen: { raw?: string; vec?: string } = {};
      const handler = fn<{ raw: Uint8Array; vec: Float32Array }, { doubled: Float32Array; bytes: number }>({}, (input) => {
        seen.raw = input.raw.constructor.name;
        seen.vec = input.vec.constructor.name;
        assert.ok(input.raw instanceof Uint8Array, 'raw must be a Uint8Array');
        assert.ok(input.vec instanceof Float32Array, 'vec must be a Float32Array');
        return { doubled: input.vec.map((x) => x * 2), bytes: input.raw.reduce((a, b) => a + b, 0) };
      });
      const schema = {
        type: 'object',
        required: ['raw', 'vec'],
        properties: { raw: { 'x-typedArray': 'Uint8Array' }, vec: { 'x-typedArray': 'Float32Array' } },
      };
      const { shim, url } = await start({ fn: handler, inputSchema: schema });
      await shim.ready;

      const backing = new Float32Array([9, 1.5, -2.25, 4, 9]);
      const vec = new Float32Array(backing.buffer, 4, 3); // [1.5, -2.25, 4] at a non-zero offset
      const reply = await call(url, encodeValue({ raw: new Uint8Array([1, 2, 3, 250]), vec }));
      assert.equal(reply.status, 200, JSON.stringify(reply.body));
      assert.deepEqual(seen, { raw: 'Uint8Array', vec: 'Float32Array' });

      const output = reply.body.output as { doubled: { $typed: string; base64: string }; bytes: number };
      assert.equal(output.doubled.$typed, 'Float32Array');
      assert.equal(output.bytes, 256);
      const decoded = decodeValue(output) as { doubled: Float32Array };
      assert.ok(decoded.doubled instanceof Float32Array);
      assert.deepEqual([...decoded.doubled], [3, -4.5, 8]);
    });

    it('rejects a plain array where the schema wants a Float32Array with ValidationError', async () => {
      const { shim, url } = await start({
        fn: fn({}, () => 'never'),
        inputSchema: { type: 'object', properties: { vec: { 'x-typedArray': 'Float32Array' } } },
      });
      await shim.ready;
      const reply = await call(url, { vec: [1, 2, 3] });
      assert.equal(reply.status, 400);
      assert.equal(reply.body.error?.type, 'ValidationError');
      assert.equal(reply.body.error?.path, '/vec');
    });
  });

  describe('spawn', () => {
    it('answers 202 with an id, then reports running and later succeeded with the output', async () => {
      const release = gate();
      const handler = fn<{ n: number }, { square: number }>({}, async (input) => {
        await release.opened;
        return { square: input.n * input.n };
      });
      const { shim, url } = await start({ fn: handler });
      await shim.ready;

      const spawned = await call(url, { n: 12 }, {}, '/v1/spawn');
      assert.equal(spawned.status, 202);
      assert.equal(spawned.body.kind, 'spawned');
      const id = spawned.body.id;
      assert.equal(typeof id, 'string');
      assert.ok(id);

      const running = await request(`${url}/v1/calls/${id}`);
      assert.equal(running.status, 200);
      assert.equal(running.body.kind, 'status');
      assert.equal(running.body.status, 'running');
      assert.equal(running.body.output, undefined);

      release.open();
      let done = running;
      for (let i = 0; i < 50 && done.body.status === 'running'; i += 1) {
        await sleep(10);
        done = await request(`${url}/v1/calls/${id}`);
      }
      assert.equal(done.body.status, 'succeeded');
      assert.deepEqual(done.body.output, { square: 144 });
    });

    it('reports a spawned call whose handler threw as failed with the error', async () => {
      const handler = fn<null, never>({}, async () => {
        throw new TypeError('bad tensor shape');
      });
      const { shim, url } = await start({ fn: handler });
      await shim.ready;
      const spawned = await call(url, null, {}, '/v1/spawn');
      assert.equal(spawned.status, 202);
      let status = await request(`${url}/v1/calls/${spawned.body.id}`);
      for (let i = 0; i < 50 && status.body.status === 'running'; i += 1) {
        await sleep(10);
        status = await request(`${url}/v1/calls/${spawned.body.id}`);
      }
      assert.equal(status.status, 200);
      assert.equal(status.body.status, 'failed');
      assert.equal(status.body.error?.type, 'HandlerError');
      assert.equal(status.body.error?.message, 'bad tensor shape');
      assert.equal(status.body.error?.name, 'TypeError');
    });

    it('answers 404 NotFound for an unknown call id', async () => {
      const { shim, url } = await start({ fn: fn({}, () => 1) });
      await shim.ready;
      const reply = await request(`${url}/v1/calls/00000000-0000-0000-0000-000000000000`);
      assert.equal(reply.status, 404);
      assert.equal(reply.body.error?.type, 'NotFound');
    });
  });
});

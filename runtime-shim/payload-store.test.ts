import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { isUnder, payloadUrl, readPayload, writePayload } from './payload-store';
import { fn } from './runtime';
import { Shim } from './server';

describe('the payload store', function () {
  this.timeout(10_000);
  let dir = '';
  let base = '';
  let shim: Shim | undefined;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sgpu-payloads-'));
    base = `${pathToFileURL(dir).href}/`;
  });
  afterEach(async () => {
    await shim?.drain(1000);
    shim = undefined;
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('writes and reads file:// payloads, and keeps refs inside their base', async () => {
    const url = payloadUrl(base, 'call-1/input.json');
    await writePayload(url, '{"a":1}');
    assert.equal(await readPayload(url), '{"a":1}');
    assert.ok(isUnder(url, base));
    assert.ok(!isUnder(payloadUrl(base, '../elsewhere/x.json'), base));
    assert.ok(!isUnder('file:///etc/passwd', base));
    await assert.rejects(readPayload('ftp://x/y'), /not a payload URL/);
  });

  it('answers a large output with outputRef, and refuses an inputRef outside its store', async () => {
    shim = new Shim({
      functionName: 'big',
      fn: fn({}, (input: { n: number }) => ({ text: 'x'.repeat(input.n) })),
      concurrency: 1,
      timeoutMs: 5_000,
      weightsPath: dir,
      payloadStore: base,
      inlineLimitBytes: 1_000,
      log: () => undefined,
    });
    const port = await shim.listen(0, '127.0.0.1');
    await shim.ready;
    const call = async (body: unknown): Promise<{ status: number; reply: Record<string, unknown> }> => {
      const response = await fetch(`http://127.0.0.1:${port}/v1/call`, { method: 'POST', body: JSON.stringify(body) });
      return { status: response.status, reply: (await response.json()) as Record<string, unknown> };
    };
    const small = await call({ v: 1, kind: 'call', input: { n: 10 } });
    assert.deepEqual(small.reply.output, { text: 'x'.repeat(10) });
    const large = await call({ v: 1, kind: 'call', input: { n: 5_000 } });
    assert.equal(large.reply.output, undefined);
    assert.ok(isUnder(large.reply.outputRef as string, base));
    assert.deepEqual(JSON.parse(await readPayload(large.reply.outputRef as string)), { text: 'x'.repeat(5_000) });

    const inputRef = payloadUrl(base, 'c/input.json');
    await writePayload(inputRef, JSON.stringify({ n: 3 }));
    assert.deepEqual((await call({ v: 1, kind: 'call', inputRef })).reply.output, { text: 'xxx' });
    const outside = await call({ v: 1, kind: 'call', inputRef: 'file:///etc/hostname' });
    assert.equal(outside.status, 400);
    assert.match((outside.reply.error as { message: string }).message, /not in this function's payload store/);
  });
});

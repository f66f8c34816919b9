/**
 * The container contract on the real artifacts of integration/fixtures/toolbox: binary data through the
 * generated client, and SIGTERM drain — of one shim process run as a container runs it, and of a whole
 * local deploy through `sls remove` — losing no call in flight.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { RemoteFunction } from '../runtime-shim/client';
import { ROOT, copyService, loadClient, processesMentioning, sls } from './helpers';

interface ToolboxClient {
  sleepy: RemoteFunction<{ ms: number; tag: string }, { tag: string; pid: number }>;
  vectors: RemoteFunction<{ values: Float32Array; raw: Uint8Array }, { sum: number; scaled: Float32Array; reversed: Uint8Array }>;
}

/** Starts `node shim.js manifest.json` as a container would (PORT from the environment); resolves with its port. */
function startShim(artifactDir: string): Promise<{ child: ChildProcess; port: number; log: () => string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(artifactDir, 'shim.js'), path.join(artifactDir, 'manifest.json')], {
      env: { ...process.env, PORT: '0', HOST: '127.0.0.1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let log = '';
    const timer = setTimeout(() => reject(new Error(`shim did not start:\n${log}`)), 15_000);
    child.stderr!.on('data', (chunk: Buffer) => {
      log += chunk.toString();
      const match = /listening on 127\.0\.0\.1:(\d+)/.exec(log);
      if (match && /ready after setup/.test(log)) {
        clearTimeout(timer);
        resolve({ child, port: Number(match[1]), log: () => log });
      }
    });
    child.on('exit', (code) => reject(new Error(`shim exited with ${code}:\n${log}`)));
  });
}

describe('integration/fixtures/toolbox on the local target', function () {
  this.timeout(120_000);
  let dir = '';
  let client: ToolboxClient;

  before(async () => {
    dir = copyService(path.join(ROOT, 'integration', 'fixtures', 'toolbox'), 'toolbox');
    const deployed = await sls('osls', ['deploy', '--stage', 'local'], dir);
    assert.equal(deployed.code, 0, deployed.output);
    client = loadClient<ToolboxClient>(path.join(dir, 'generated', 'client'));
  });

  after(async () => {
    await sls('osls', ['remove', '--stage', 'local'], dir);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('round-trips Float32Array and Uint8Array through the generated client', async () => {
    const out = await client.vectors.remote({ values: new Float32Array([1.5, 2.25, -0.5]), raw: new Uint8Array([1, 2, 3, 255]) });
    assert.equal(out.sum, 3.25);
    assert.ok(out.scaled instanceof Float32Array);
    assert.deepEqual([...out.scaled], [3, 4.5, -1]);
    assert.ok(out.reversed instanceof Uint8Array);
    assert.deepEqual([...out.reversed], [255, 3, 2, 1]);
  });

  it('sends an input larger than a request body through the payload store, and the output back the same way', async () => {
    // 9 M floats: 36 MB of data, 48 MB as JSON — past the shim's 32 MiB body limit, so only the store can carry it.
    const values = new Float32Array(9_000_000).map((_, i) => i % 1000);
    const out = await client.vectors.remote({ values, raw: new Uint8Array([9, 8, 7]) });
    assert.equal(out.scaled.length, values.length);
    assert.equal(out.scaled[1234], 2 * 234);
    assert.deepEqual([...out.reversed], [7, 8, 9]);
    const payloads = path.join(dir, '.serverless-gpu', 'local', 'local', 'payloads', 'vectors');
    assert.ok(fs.existsSync(payloads), 'the local payload store was used');
  });

  it('drains a shim process on SIGTERM: calls in flight answer, new calls are refused, exit 0', async () => {
    const { child, port, log } = await startShim(path.join(dir, '.serverless', 'gpu', 'sleepy'));
    const sleepy = client.sleepy.with({ endpoint: `http://127.0.0.1:${port}`, timeoutMs: 20_000 });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const inFlight = Array.from({ length: 5 }, (_, i) => sleepy.remote({ ms: 800, tag: `call-${i}` }));
    await new Promise((resolve) => setTimeout(resolve, 200));
    child.kill('SIGTERM');
    await new Promise((resolve) => setTimeout(resolve, 100));
    // A call after SIGTERM is refused: 503 ShuttingDown while draining, or the port already closed.
    const late = await fetch(`http://127.0.0.1:${port}/v1/call`, {
      method: 'POST',
      body: JSON.stringify({ v: 1, kind: 'call', input: { ms: 1, tag: 'late' } }),
    }).then(
      async (response) => ({ status: response.status, body: await response.text() }),
      (error: Error & { cause?: { code?: string } }) => ({ status: 0, body: String(error.cause?.code) }),
    );
    assert.ok(late.status === 503 || late.body === 'ECONNREFUSED', `late call: ${late.status} ${late.body}`);
    if (late.status === 503) assert.match(late.body, /ShuttingDown/);
    const results = await Promise.all(inFlight);
    assert.deepEqual(results.map((r) => r.tag), ['call-0', 'call-1', 'call-2', 'call-3', 'call-4']);
    assert.equal(await exited, 0, log());
    assert.match(log(), /SIGTERM: draining 5 call\(s\)/);
  });

  it('loses no call in flight when sls remove stops the deployed service', async () => {
    // Longer than the CLI takes to start, so the calls are still running when the SIGTERM arrives.
    const inFlight = Array.from({ length: 4 }, (_, i) => client.sleepy.remote({ ms: 6_000, tag: `remove-${i}` }));
    await new Promise((resolve) => setTimeout(resolve, 300));
    const removed = sls('osls', ['remove', '--stage', 'local'], dir);
    const results = await Promise.all(inFlight);
    assert.deepEqual(results.map((r) => r.tag), ['remove-0', 'remove-1', 'remove-2', 'remove-3']);
    assert.equal((await removed).code, 0);
    assert.deepEqual(processesMentioning(dir), []);
    const log = fs.readFileSync(path.join(dir, '.serverless-gpu', 'local', 'local', 'sleepy.log'), 'utf8');
    assert.match(log, /SIGTERM: draining 4 call\(s\)/);
  });
});

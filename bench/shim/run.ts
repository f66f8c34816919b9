/**
 * Benchmark: the same classifier served by the runtime shim (`POST /v1/call`, input validated against its
 * JSON Schema) and by a hand-written Fastify `POST /predict`, each in its own child process on loopback,
 * driven by a closed-loop keep-alive HTTP load generator in this process.
 *
 *   npm run bench
 *   BENCH_REQUESTS=3000 BENCH_SECONDS=5 BENCH_CONCURRENCY=16 BENCH_ROUNDS=2 node dist/bench/shim/run.js
 *
 * Each run is a warm-up phase then a measured phase, both bounded in requests and in seconds. The servers
 * are measured in alternating order (shim, fastify, fastify, shim, ...); each server's figures are those of
 * its best run by throughput. Besides the client-side figures it prints the server process's CPU time per
 * request, which still compares the two servers when the load generator (not the server) is the bottleneck.
 * Exits 1 on any failed request or if the servers disagree, not on the target.
 */
import assert from 'node:assert/strict';
import { fork, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { SAMPLE_INPUTS } from './classifier';
import { runLoad } from './load';
import { summarise, type Summary } from './stats';

function positiveEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${name}=${raw} must be a positive number`);
  return value;
}

const REQUESTS = Math.floor(positiveEnv('BENCH_REQUESTS', 20_000));
const SECONDS = positiveEnv('BENCH_SECONDS', 15);
const CONCURRENCY = Math.floor(positiveEnv('BENCH_CONCURRENCY', 32));
const ROUNDS = Math.floor(positiveEnv('BENCH_ROUNDS', 2));
const WARMUP_REQUESTS = Math.max(2_000, Math.floor(REQUESTS / 10));
const WARMUP_SECONDS = Math.max(1, SECONDS / 5);

interface Server {
  readonly name: 'shim' | 'fastify';
  readonly script: string;
  readonly path: string;
  /** Wraps an input into this server's request body. */
  readonly wrap: (input: unknown) => unknown;
  /** Extracts the classifier's output from this server's reply. */
  readonly unwrap: (reply: unknown) => unknown;
}

const SERVERS: readonly Server[] = [
  {
    name: 'shim',
    script: 'shim-server.js',
    path: '/v1/call',
    wrap: (input) => ({ v: 1, kind: 'call', input }),
    unwrap: (reply) => {
      assert.equal((reply as { kind?: unknown }).kind, 'result');
      return (reply as { output: unknown }).output;
    },
  },
  { name: 'fastify', script: 'fastify-server.js', path: '/predict', wrap: (input) => input, unwrap: (reply) => reply },
];

interface Started {
  readonly child: ChildProcess;
  readonly port: number;
}

/** A measured run: the client's figures and the server's CPU time per request. */
interface Figures extends Summary {
  readonly cpuUs: number;
}

const children = new Set<ChildProcess>();

function killChildren(): void {
  for (const child of children) child.kill();
  children.clear();
}

/** Forks a server script and resolves once it reports its port. */
function startServer(server: Server): Promise<Started> {
  const child = fork(path.join(__dirname, server.script), [], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    env: { ...process.env, BENCH_SHIM_CONCURRENCY: String(CONCURRENCY) },
  });
  children.add(child);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${server.name}: no port reported within 15 s`)), 15_000);
    child.once('message', (message: { port?: unknown }) => {
      clearTimeout(timer);
      if (typeof message.port === 'number') resolve({ child, port: message.port });
      else reject(new Error(`${server.name}: unexpected message ${JSON.stringify(message)}`));
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${server.name}: server exited early (${signal ?? `code ${code}`})`));
    });
  });
}

/** The child's CPU time so far (user + system), in microseconds. */
function cpuOf(child: ChildProcess): Promise<number> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server process ${child.pid} did not report its CPU time`)), 5_000);
    child.once('message', ({ cpu }: { cpu: NodeJS.CpuUsage }) => {
      clearTimeout(timer);
      resolve(cpu.user + cpu.system);
    });
    child.send('cpu');
  });
}

/** One request with a parsed JSON reply, for the checks before measuring. */
function request(port: number, urlPath: string, body: unknown): Promise<{ status: number; json: unknown }> {
  return new Promise((resolve, reject) => {
    const payload = Buffer.from(JSON.stringify(body));
    const req = http.request(
      { host: '127.0.0.1', port, method: 'POST', path: urlPath, headers: { 'content-type': 'application/json', 'content-length': payload.length } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => {
          try {
            resolve({ status: res.statusCode ?? 0, json: JSON.parse(Buffer.concat(chunks).toString('utf8')) });
          } catch (error) {
            reject(error);
          }
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

/** Both servers must give the same outputs and refuse the same invalid inputs before we time them. */
async function checkServers(started: ReadonlyMap<Server, Started>): Promise<void> {
  const [shim, fastify] = SERVERS;
  const call = (server: Server, input: unknown) => request(started.get(server)!.port, server.path, server.wrap(input));
  for (const input of SAMPLE_INPUTS) {
    const [a, b] = await Promise.all([call(shim, input), call(fastify, input)]);
    assert.equal(a.status, 200, `shim: ${JSON.stringify(a.json)}`);
    assert.equal(b.status, 200, `fastify: ${JSON.stringify(b.json)}`);
    assert.deepEqual(shim.unwrap(a.json), fastify.unwrap(b.json));
  }
  for (const invalid of [{}, { text: 42 }, { text: 'hi', extra: true }]) {
    for (const server of SERVERS) {
      const { status } = await call(server, invalid);
      assert.equal(status, 400, `${server.name} should refuse ${JSON.stringify(invalid)}`);
    }
  }
}

const fmt = (x: number, digits: number): string => (Number.isFinite(x) ? x.toFixed(digits) : 'n/a');
const row = (cells: readonly (string | number)[]): string =>
  cells.map((cell, i) => (i < 2 ? String(cell).padEnd(8) : String(cell).padStart(10))).join(' ');
const HEADER = row(['run', 'server', 'requests', 'errors', 'seconds', 'req/s', 'p50 ms', 'p99 ms', 'cpu us/req']);
const line = (run: string, name: string, f: Figures): string =>
  row([run, name, f.requests, f.errors, fmt(f.seconds, 2), fmt(f.rps, 0), fmt(f.p50, 3), fmt(f.p99, 3), fmt(f.cpuUs, 1)]);

async function main(): Promise<void> {
  console.log(
    `serverless-gpu shim benchmark — node ${process.version}, ${os.cpus().length} CPU(s), loopback\n` +
      `per run: warm-up ${WARMUP_REQUESTS} requests or ${WARMUP_SECONDS} s, then ${REQUESTS} requests or ${SECONDS} s ` +
      `(whichever first); concurrency ${CONCURRENCY} (shim concurrency ${CONCURRENCY}); ${ROUNDS} round(s)`,
  );
  const started = new Map<Server, Started>();
  for (const server of SERVERS) started.set(server, await startServer(server));
  await checkServers(started);
  const agents = new Map(SERVERS.map((s) => [s, new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY })] as const));
  const bodies = new Map(SERVERS.map((s) => [s, SAMPLE_INPUTS.map((input) => Buffer.from(JSON.stringify(s.wrap(input))))] as const));
  const runs = new Map<Server, Figures[]>(SERVERS.map((s) => [s, []]));

  console.log(`\n${HEADER}`);
  let run = 0;
  for (let round = 0; round < ROUNDS; round++) {
    const order = round % 2 === 0 ? SERVERS : [...SERVERS].reverse();
    for (const server of order) {
      run += 1;
      const { child, port } = started.get(server)!;
      const base = { agent: agents.get(server)!, port, path: server.path, bodies: bodies.get(server)!, concurrency: CONCURRENCY };
      await runLoad({ ...base, maxRequests: WARMUP_REQUESTS, maxSeconds: WARMUP_SECONDS });
      const cpuBefore = await cpuOf(child);
      const result = await runLoad({ ...base, maxRequests: REQUESTS, maxSeconds: SECONDS });
      const figures = { ...summarise(result), cpuUs: ((await cpuOf(child)) - cpuBefore) / result.count };
      runs.get(server)!.push(figures);
      console.log(line(String(run), server.name, figures));
    }
  }
  for (const agent of agents.values()) agent.destroy();

  const best = new Map(SERVERS.map((s) => [s, runs.get(s)!.reduce((a, b) => (b.rps > a.rps ? b : a))] as const));
  console.log(`\nbest of ${ROUNDS} run(s) per server, by throughput:\n${HEADER}`);
  for (const server of SERVERS) console.log(line('best', server.name, best.get(server)!));
  const [shim, fastify] = SERVERS.map((s) => best.get(s)!);
  console.log(
    `\nshim vs fastify: p50 latency ratio ${fmt(shim.p50 / fastify.p50, 2)}, p99 latency ratio ${fmt(shim.p99 / fastify.p99, 2)}, ` +
      `server CPU per request ratio ${fmt(shim.cpuUs / fastify.cpuUs, 2)} (lower is better)`,
  );
  console.log(`shim vs fastify: throughput ratio ${fmt(shim.rps / fastify.rps, 2)} (target >= 1.0)`);
  const errors = [...runs.values()].flat().reduce((sum, s) => sum + s.errors, 0);
  if (errors > 0) {
    console.error(`${errors} request(s) failed`);
    process.exitCode = 1;
  }
}

process.on('exit', killChildren);
process.on('SIGINT', () => process.exit(130));
process.on('SIGTERM', () => process.exit(143));
main()
  .catch((error: unknown) => {
    console.error(`bench failed: ${(error as Error).stack ?? String(error)}`);
    process.exitCode = 1;
  })
  .finally(killChildren);

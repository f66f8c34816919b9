/**
 * Closed-loop HTTP load generator: `concurrency` workers each send a request, wait for the whole reply,
 * and send the next, until `maxRequests` have been started or `maxSeconds` have passed (whichever first).
 */
import http from 'node:http';
import { performance } from 'node:perf_hooks';

export interface LoadOptions {
  /** Keep-alive agent with maxSockets = concurrency, reused across phases. */
  readonly agent: http.Agent;
  readonly port: number;
  readonly path: string;
  /** JSON request bodies, sent in turn. */
  readonly bodies: readonly Buffer[];
  readonly concurrency: number;
  readonly maxRequests: number;
  readonly maxSeconds: number;
  /** A request taking longer than this counts as an error; default 10 s. */
  readonly requestTimeoutMs?: number;
}

export interface LoadResult {
  /** Requests completed, errors included. */
  readonly count: number;
  /** Requests that failed: a status other than 200, a socket error or a timeout. */
  readonly errors: number;
  /** From the first request sent to the last reply received. */
  readonly seconds: number;
  /** Latency of each successful request, in completion order. */
  readonly latenciesMs: number[];
}

function post(options: LoadOptions, body: Buffer): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.request(
      {
        agent: options.agent,
        host: '127.0.0.1',
        port: options.port,
        method: 'POST',
        path: options.path,
        headers: { 'content-type': 'application/json', 'content-length': body.length },
      },
      (res) => {
        const ok = res.statusCode === 200;
        res.on('end', () => resolve(ok));
        res.on('error', () => resolve(false));
        res.resume();
      },
    );
    req.setTimeout(options.requestTimeoutMs ?? 10_000, () => req.destroy(new Error('request timed out')));
    req.on('error', () => resolve(false));
    req.end(body);
  });
}

export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  const latenciesMs: number[] = [];
  let started = 0;
  let errors = 0;
  const t0 = performance.now();
  const deadline = t0 + options.maxSeconds * 1000;
  const worker = async (): Promise<void> => {
    while (started < options.maxRequests && performance.now() < deadline) {
      const body = options.bodies[started % options.bodies.length];
      started += 1;
      const sent = performance.now();
      if (await post(options, body)) latenciesMs.push(performance.now() - sent);
      else errors += 1;
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, worker));
  return { count: started, errors, seconds: (performance.now() - t0) / 1000, latenciesMs };
}

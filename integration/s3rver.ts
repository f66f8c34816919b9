/**
 * A real S3-protocol server for tests and benchmarks: s3rver on 127.0.0.1 in a child process, objects
 * in a temporary folder. The AWS SDK v3 reaches it the way users point it at any S3-compatible store,
 * through `AWS_ENDPOINT_URL_S3` (see `useS3rverEnv`).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface S3rverStats {
  /** Requests s3rver received (the stats endpoint itself not counted). */
  readonly requests: number;
  /** Request body bytes s3rver received: what clients uploaded, headers excluded. */
  readonly bodyBytes: number;
  readonly byMethod: Readonly<Record<string, number>>;
  /** Requests with a Range header. */
  readonly ranged: number;
}

export interface TestS3 {
  /** `http://127.0.0.1:PORT` */
  readonly endpoint: string;
  /** Where s3rver keeps the objects. */
  readonly dir: string;
  stats(): Promise<S3rverStats>;
  resetStats(): Promise<void>;
  stop(): Promise<void>;
}

/** Starts s3rver with the buckets; `stop()` ends it and removes its folder. */
export async function startS3rver(buckets: readonly string[]): Promise<TestS3> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sgpu-s3rver-'));
  const child: ChildProcess = spawn(process.execPath, ['--openssl-legacy-provider', path.join(__dirname, 's3rver-main.js'), dir, ...buckets], {
    // stdin stays open while this process lives: the child exits when it closes.
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let log = '';
  child.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`s3rver did not start in 15 s:\n${log}`)), 15_000);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const line = /^\{.*\}$/m.exec(out);
      if (line) {
        clearTimeout(timer);
        resolve((JSON.parse(line[0]) as { port: number }).port);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`s3rver exited (${code}) before listening:\n${log}`));
    });
  });
  const endpoint = `http://127.0.0.1:${port}`;
  return {
    endpoint,
    dir,
    stats: async () => (await (await fetch(`${endpoint}/__sgpu/stats`)).json()) as S3rverStats,
    resetStats: async () => void (await (await fetch(`${endpoint}/__sgpu/stats`, { method: 'POST' })).arrayBuffer()),
    stop: async () => {
      if (child.exitCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 5000))]);
        if (child.exitCode === null) child.kill('SIGKILL');
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The environment the AWS SDK needs to reach the server;. */
export function s3rverEnv(s3: Pick<TestS3, 'endpoint'>): Record<string, string> {
  return {
    AWS_ENDPOINT_URL_S3: s3.endpoint,
    AWS_ACCESS_KEY_ID: 'S3RVER',
    AWS_SECRET_ACCESS_KEY: 'S3RVER',
    AWS_REGION: 'us-east-1',
  };
}

/** Sets the variables of `s3rverEnv` on process.env; the returned function puts the old values back. */
export function useS3rverEnv(s3: Pick<TestS3, 'endpoint'>): () => void {
  const values = { ...s3rverEnv(s3), AWS_SESSION_TOKEN: undefined, AWS_PROFILE: undefined };
  const saved = Object.fromEntries(Object.keys(values).map((key) => [key, process.env[key]]));
  const set = (entries: Record<string, string | undefined>): void => {
    for (const [key, value] of Object.entries(entries)) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
  };
  set(values);
  return () => set(saved);
}

/**
 * The container's entry point: `node main.js [manifest.json]` (or SGPU_MANIFEST). Loads the function's
 * bundle, serves it on PORT (the Cloud Run contract; default 8080) and drains on SIGTERM/SIGINT.
 * With `SGPU_MODE=batch` (AWS Batch) it runs the one call its job describes instead, and exits with the
 * job's exit code (see batch-runner.ts).
 */
import path from 'node:path';
import { runBatchJob } from './batch-runner';
import { loadFunction, loadManifest } from './load';
import { Shim } from './server';
import { MANIFEST_FILE } from './manifest';

export { loadFunction, loadManifest } from './load';

/** How long in-flight calls get after SIGTERM (Cloud Run allows 10 s before SIGKILL). */
const DEFAULT_GRACE_MS = 10_000;

function manifestPath(argv: readonly string[]): string {
  return path.resolve(argv[0] ?? process.env.SGPU_MANIFEST ?? path.join(__dirname, MANIFEST_FILE));
}

/** Batch mode: runs the job's call and resolves with the exit code. */
export async function runBatch(argv: readonly string[] = process.argv.slice(2)): Promise<number> {
  const manifestFile = manifestPath(argv);
  return runBatchJob(loadManifest(manifestFile), manifestFile, process.env);
}

export async function main(argv: readonly string[] = process.argv.slice(2)): Promise<Shim> {
  const manifestFile = manifestPath(argv);
  const manifest = loadManifest(manifestFile);
  const fn = loadFunction(manifestFile, manifest);
  const shim = new Shim({
    functionName: manifest.function,
    fn,
    inputSchema: manifest.contract.input,
    concurrency: Number(process.env.SGPU_CONCURRENCY ?? manifest.concurrency),
    timeoutMs: Number(process.env.SGPU_TIMEOUT_MS ?? manifest.timeoutMs),
    weightsPath: process.env.SGPU_WEIGHTS_PATH ?? manifest.weightsPath,
    payloadStore: process.env.SGPU_PAYLOAD_STORE || undefined,
    inlineLimitBytes: Number(process.env.SGPU_INLINE_LIMIT) || undefined,
  });
  const host = process.env.HOST ?? '0.0.0.0';
  const port = await shim.listen(Number(process.env.PORT ?? 8080), host);
  process.stderr.write(`[${manifest.function}] listening on ${host}:${port}\n`);
  const grace = Number(process.env.SGPU_GRACE_MS ?? DEFAULT_GRACE_MS);
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    process.stderr.write(`[${manifest.function}] ${signal}: draining ${shim.inFlight} call(s)\n`);
    shim.drain(grace).then((abandoned) => {
      process.stderr.write(`[${manifest.function}] drained${abandoned ? `, ${abandoned} call(s) cut off` : ''}; exiting\n`);
      process.exit(abandoned ? 1 : 0);
    }, () => process.exit(1));
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  shim.ready.catch(() => {
    // A container whose setup failed cannot serve: exit so the platform restarts it.
    process.exit(3);
  });
  return shim;
}

if (require.main === module && process.env.SGPU_MODE === 'batch') {
  runBatch().then(
    (code) => process.exit(code),
    (error: unknown) => {
      process.stderr.write(`serverless-gpu shim: ${(error as Error).stack ?? String(error)}\n`);
      process.exit(2);
    },
  );
} else if (require.main === module) {
  main().catch((error: unknown) => {
    process.stderr.write(`serverless-gpu shim: ${(error as Error).stack ?? String(error)}\n`);
    process.exit(2);
  });
}

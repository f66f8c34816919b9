/**
 * Child process: serves the classifier through the runtime shim (input validation on) on 127.0.0.1 and
 * a free port, and reports the port to the parent once setup has finished.
 */
import { fn } from '../../runtime-shim/runtime';
import { Shim } from '../../runtime-shim/server';
import { reportToParent } from './child';
import { classify, inputSchema, type ClassifyInput } from './classifier';

async function start(): Promise<void> {
  const shim = new Shim({
    functionName: 'classify',
    fn: fn({}, (input: ClassifyInput) => classify(input)),
    inputSchema,
    concurrency: Number(process.env.BENCH_SHIM_CONCURRENCY ?? 32),
    timeoutMs: 30_000,
    weightsPath: '/tmp',
    log: () => undefined,
  });
  const port = await shim.listen(0, '127.0.0.1');
  await shim.ready;
  reportToParent(port);
}

start().catch((error: unknown) => {
  process.stderr.write(`shim-server: ${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});

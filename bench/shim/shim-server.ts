/**
 * Child process: serves the classifier through the runtime shim (input validation on) on 127.0.0.1 and
 * a free port, and sends `{ port }` to the parent over IPC once setup has finished.
 */
import { fn } from '../../runtime-shim/runtime';
import { Shim } from '../../runtime-shim/server';
import { classify, inputSchema, type ClassifyInput, type ClassifyOutput } from './classifier';

async function start(): Promise<void> {
  const shim = new Shim({
    functionName: 'classify',
    fn: fn<ClassifyInput, ClassifyOutput>({}, (input) => classify(input)) as never,
    inputSchema,
    concurrency: Number(process.env.BENCH_SHIM_CONCURRENCY ?? 32),
    timeoutMs: 30_000,
    weightsPath: '/tmp',
    log: () => undefined,
  });
  const port = await shim.listen(0, '127.0.0.1');
  await shim.ready;
  process.send?.({ port });
}

process.on('disconnect', () => process.exit(0));
start().catch((error: unknown) => {
  process.stderr.write(`shim-server: ${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});

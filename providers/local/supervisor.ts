/**
 * Keeps one function's local instances up: `node supervisor.js <plan.json>`. Started detached by
 * `sls deploy` (it leads its own process group), it runs one shim process per instance on its port,
 * restarts an instance that dies (with backoff, at most MAX_RESTARTS times in a row), and on SIGTERM
 * passes the signal on, waits for every instance to drain and exits.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';

export interface SupervisorPlan {
  readonly function: string;
  readonly shim: string;
  readonly manifest: string;
  readonly host: string;
  readonly ports: readonly number[];
  readonly env: Readonly<Record<string, string>>;
}

const MAX_RESTARTS = 5;

function log(name: string, line: string): void {
  process.stdout.write(`${new Date().toISOString()} [supervisor ${name}] ${line}\n`);
}

export function supervise(plan: SupervisorPlan): void {
  let stopping = false;
  const children = new Map<number, ChildProcess>();
  const restarts = new Map<number, number>();

  const start = (port: number): void => {
    const child = spawn(process.execPath, ['--enable-source-maps', plan.shim, plan.manifest], {
      env: { ...process.env, ...plan.env, PORT: String(port), HOST: plan.host },
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    children.set(port, child);
    const startedAt = Date.now();
    child.on('exit', (code, signal) => {
      children.delete(port);
      if (stopping) {
        if (children.size === 0) process.exit(0);
        return;
      }
      // A run of more than a minute resets the count: only a crash loop gives up.
      const count = Date.now() - startedAt > 60_000 ? 1 : (restarts.get(port) ?? 0) + 1;
      restarts.set(port, count);
      if (count > MAX_RESTARTS) {
        log(plan.function, `instance on port ${port} exited (${signal ?? code}) ${count} times in a row; not restarting`);
        if (children.size === 0) process.exit(1);
        return;
      }
      const delay = Math.min(10_000, 250 * 2 ** count);
      log(plan.function, `instance on port ${port} exited (${signal ?? code}); restarting in ${delay} ms`);
      setTimeout(() => !stopping && start(port), delay);
    });
  };

  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) return;
    stopping = true;
    log(plan.function, `${signal}: stopping ${children.size} instance(s)`);
    if (children.size === 0) process.exit(0);
    for (const child of children.values()) child.kill('SIGTERM');
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  for (const port of plan.ports) start(port);
  log(plan.function, `started ${plan.ports.length} instance(s) on ${plan.ports.map((p) => `${plan.host}:${p}`).join(', ')}`);
}

if (require.main === module) {
  const plan = JSON.parse(fs.readFileSync(process.argv[2], 'utf8')) as SupervisorPlan;
  supervise(plan);
}

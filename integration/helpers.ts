/** What the integration tests share: the real CLIs, copies of examples, and process checks. */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

export const ROOT = path.resolve(__dirname, '..', '..');
/** Copies of services live here, one folder per test process, so two runs never share one. */
export const WORK = path.join(ROOT, 'integration', '.work', `run-${process.pid}`);

/** The two framework CLIs the plugin supports, run as a user runs them. */
export const CLIS = {
  osls: path.join(ROOT, 'node_modules', 'osls', 'bin', 'serverless.js'),
  'serverless@3': path.join(ROOT, 'node_modules', 'serverless3', 'bin', 'serverless.js'),
} as const;
export type Cli = keyof typeof CLIS;

export interface RunResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  /** stdout and stderr together, for matching messages wherever the framework prints them. */
  readonly output: string;
}

export function run(command: string, args: readonly string[], cwd: string, timeoutMs = 180_000, env: Record<string, string> = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd,
      env: { ...process.env, SLS_TELEMETRY_DISABLED: '1', SLS_NOTIFICATIONS_MODE: 'off', FORCE_COLOR: '0', NO_COLOR: '1', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${command} ${args.join(' ')} ran past ${timeoutMs} ms\n${stdout}\n${stderr}`));
    }, timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, output: `${stdout}\n${stderr}` });
    });
  });
}

export function sls(cli: Cli, args: readonly string[], cwd: string): Promise<RunResult> {
  return run(process.execPath, [CLIS[cli], ...args], cwd);
}

/** Copies a service folder (without build output) under integration/.work, where the plugin resolves by name. */
export function copyService(from: string, name: string): string {
  const dest = path.join(WORK, name);
  fs.rmSync(dest, { recursive: true, force: true });
  fs.cpSync(from, dest, {
    recursive: true,
    filter: (src) => !/(^|\/)(\.serverless|\.serverless-gpu|generated|node_modules)(\/|$)/.test(path.relative(from, src)),
  });
  return dest;
}

/** Pids of running processes whose command line mentions `text` (read from /proc). */
export function processesMentioning(text: string): number[] {
  const pids: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const cmdline = fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8').replace(/\0/g, ' ');
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      if (cmdline.includes(text) && !/\) Z /.test(stat)) pids.push(Number(entry));
    } catch {
      // the process ended while we looked
    }
  }
  return pids;
}

/** Loads a generated client's CommonJS build fresh (not from require's cache). */
export function loadClient<T>(dir: string): T {
  const file = require.resolve(path.join(dir, 'index.cjs'));
  delete require.cache[file];
  return require(file) as T;
}

/** `import()` that TypeScript's CommonJS output leaves alone, for loading ESM. */
export const importEsm = new Function('specifier', 'return import(specifier)') as (specifier: string) => Promise<unknown>;

/**
 * Real image infrastructure for tests and benchmarks, all on this machine: Debian's `docker-registry`
 * on 127.0.0.1 (anonymous or htpasswd), a base image with Node made from this machine's own files
 * (no internet), and a way to pull, unpack and run an image with skopeo, umoci and runc.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export interface TestRegistry {
  /** `127.0.0.1:PORT` */
  readonly host: string;
  /** Requests the registry received so far, from its access log: `PUT /v2/.../blobs/uploads/...`. */
  requests(): Array<{ method: string; path: string; status: number }>;
  /** Resolves once every request made before the call is in the access log (the log is written asynchronously). */
  sync(): Promise<void>;
  stop(): Promise<void>;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

export function commandExists(command: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' }).status === 0;
}

/** Starts `docker-registry serve` on 127.0.0.1; with `htpasswd`, Basic auth for that one user. */
export async function startRegistry(options: { htpasswd?: { user: string; password: string } } = {}): Promise<TestRegistry> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sgpu-registry-'));
  const port = await freePort();
  const auth: string[] = [];
  if (options.htpasswd) {
    const made = spawnSync('htpasswd', ['-Bbn', options.htpasswd.user, options.htpasswd.password], { encoding: 'utf8' });
    if (made.status !== 0) throw new Error(`htpasswd failed: ${made.stderr}`);
    fs.writeFileSync(path.join(dir, 'htpasswd'), made.stdout);
    auth.push('auth:', '  htpasswd:', '    realm: sgpu-test', `    path: ${path.join(dir, 'htpasswd')}`);
  }
  fs.writeFileSync(
    path.join(dir, 'config.yml'),
    [
      'version: 0.1',
      'log:',
      '  level: info',
      '  accesslog:',
      '    disabled: false',
      'storage:',
      '  filesystem:',
      `    rootdirectory: ${path.join(dir, 'data')}`,
      '  delete:',
      '    enabled: true',
      'http:',
      `  addr: 127.0.0.1:${port}`,
      ...auth,
      '',
    ].join('\n'),
  );
  const child: ChildProcess = spawn('docker-registry', ['serve', path.join(dir, 'config.yml')], { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  child.stdout!.on('data', (d: Buffer) => (log += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  const host = `127.0.0.1:${port}`;
  const deadline = Date.now() + 15_000;
  for (;;) {
    try {
      const response = await fetch(`http://${host}/v2/`);
      await response.arrayBuffer();
      break;
    } catch {
      if (Date.now() > deadline || child.exitCode !== null) throw new Error(`docker-registry did not start:\n${log}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  let syncs = 0;
  return {
    host,
    sync: async () => {
      const marker = `/v2/?sync=${++syncs}`;
      await (await fetch(`http://${host}${marker}`)).arrayBuffer();
      const until = Date.now() + 5_000;
      while (!log.includes(`GET ${marker} `) && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 10));
    },
    requests: () =>
      [...log.matchAll(/"([A-Z]+) (\/v2\/[^ ]*) HTTP\/[0-9.]+" (\d{3})/g)].map((m) => ({ method: m[1], path: m[2], status: Number(m[3]) })),
    stop: async () => {
      if (child.exitCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        await exited;
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

function run(command: string, args: readonly string[], cwd?: string): string {
  const result = spawnSync(command, args, { cwd, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (result.status !== 0) throw new Error(`${command} ${args.join(' ')} failed (${result.status}):\n${result.stdout}\n${result.stderr}`);
  return result.stdout;
}

/**
 * Builds `<registry>/base/node:<tag>`: this machine's `node`, `sh` and `grep` with the shared libraries they
 * load, from scratch, with buildah — a base image with Node made without the internet.
 */
export function buildNodeBase(registry: string, tag = 'test'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sgpu-base-'));
  try {
    const rootfs = path.join(dir, 'rootfs');
    const copy = (file: string, dest = file): void => {
      fs.mkdirSync(path.join(rootfs, path.dirname(dest)), { recursive: true });
      fs.copyFileSync(fs.realpathSync(file), path.join(rootfs, dest));
      fs.chmodSync(path.join(rootfs, dest), fs.statSync(fs.realpathSync(file)).mode);
    };
    const node = fs.realpathSync(process.execPath);
    const sh = fs.realpathSync('/bin/sh');
    const grep = fs.realpathSync('/bin/grep');
    copy(node, '/usr/bin/node');
    copy(sh, '/bin/sh');
    copy(grep, '/bin/grep'); // the Containerfile's `.node()` step checks the version with grep
    const libraries = run('ldd', [node, sh, grep])
      .split('\n')
      .flatMap((line) => {
        const match = /(?:=>\s*)?(\/\S+)\s+\(0x/.exec(line);
        return match ? [match[1]] : [];
      });
    for (const lib of new Set(libraries)) copy(lib);
    fs.mkdirSync(path.join(rootfs, 'tmp'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'Containerfile'), 'FROM scratch\nCOPY rootfs/ /\nENV PATH=/usr/bin:/bin\n');
    const ref = `${registry}/base/node:${tag}`;
    run('buildah', ['--storage-driver', 'vfs', 'bud', '--isolation', 'chroot', '-f', path.join(dir, 'Containerfile'), '-t', ref, dir]);
    run('buildah', ['--storage-driver', 'vfs', 'push', '--tls-verify=false', ref, `docker://${ref}`]);
    return ref;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

export interface RunningContainer {
  readonly id: string;
  readonly port: number;
  readonly log: () => string;
  /** SIGTERM, wait for exit, delete; resolves with the exit code. */
  stop(): Promise<number | null>;
}

/**
 * Pulls an image by reference with skopeo, unpacks it with umoci and runs it with runc, sharing the
 * host's network namespace so the shim's port is reachable on 127.0.0.1.
 */
export async function runImage(reference: string, env: Record<string, string> = {}): Promise<RunningContainer> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sgpu-runc-'));
  run('skopeo', ['copy', '--src-tls-verify=false', `docker://${reference}`, `oci:${path.join(dir, 'oci')}:img`]);
  run('umoci', ['unpack', '--image', `${path.join(dir, 'oci')}:img`, path.join(dir, 'bundle')]);
  const configFile = path.join(dir, 'bundle', 'config.json');
  const config = JSON.parse(fs.readFileSync(configFile, 'utf8')) as {
    process: { terminal: boolean; env: string[] };
    linux: { namespaces: Array<{ type: string }> };
  };
  const port = await freePort();
  const extra = { PORT: String(port), HOST: '127.0.0.1', ...env };
  config.process.terminal = false;
  config.process.env = [...config.process.env.filter((e) => !(e.split('=')[0] in extra)), ...Object.entries(extra).map(([k, v]) => `${k}=${v}`)];
  config.linux.namespaces = config.linux.namespaces.filter((ns) => ns.type !== 'network');
  fs.writeFileSync(configFile, JSON.stringify(config));
  const id = `sgpu-test-${process.pid}-${port}`;
  const child = spawn('runc', ['run', '--bundle', path.join(dir, 'bundle'), id], { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  child.stdout!.on('data', (d: Buffer) => (log += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const deadline = Date.now() + 20_000;
  for (;;) {
    try {
      const response = await fetch(`http://127.0.0.1:${port}/healthz`);
      await response.arrayBuffer();
      if (response.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline || child.exitCode !== null) {
      spawnSync('runc', ['delete', '--force', id]);
      throw new Error(`the container did not become ready:\n${log}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return {
    id,
    port,
    log: () => log,
    stop: async () => {
      spawnSync('runc', ['kill', id, 'TERM']);
      const code = await Promise.race([exited, new Promise<null>((resolve) => setTimeout(() => resolve(null), 15_000))]);
      spawnSync('runc', ['delete', '--force', id]);
      fs.rmSync(dir, { recursive: true, force: true });
      return code;
    },
  };
}

/** An image pulled and unpacked once, from which containers start read-only (several at a time). */
export interface UnpackedImage {
  readonly dir: string;
  /** The runtime config umoci wrote: process args, env, cwd. */
  readonly config: { process: { args: string[]; env: string[]; cwd: string } } & Record<string, unknown>;
  remove(): void;
}

export function unpackImage(reference: string): UnpackedImage {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sgpu-image-'));
  run('skopeo', ['copy', '--src-tls-verify=false', `docker://${reference}`, `oci:${path.join(dir, 'oci')}:img`]);
  run('umoci', ['unpack', '--image', `${path.join(dir, 'oci')}:img`, path.join(dir, 'bundle')]);
  const config = JSON.parse(fs.readFileSync(path.join(dir, 'bundle', 'config.json'), 'utf8')) as UnpackedImage['config'];
  return { dir, config, remove: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

/**
 * Starts one container of an unpacked image with runc — read-only root, a private /tmp, the host's
 * network (so 127.0.0.1 services are reachable) — with extra environment; returns the runc process.
 */
export function runContainer(image: UnpackedImage, id: string, env: Readonly<Record<string, string>>): ChildProcess {
  const bundle = fs.mkdtempSync(path.join(image.dir, 'run-'));
  const config = JSON.parse(JSON.stringify(image.config)) as UnpackedImage['config'] & {
    root: { path: string; readonly: boolean };
    mounts: Array<Record<string, unknown>>;
    linux: { namespaces: Array<{ type: string }> };
  };
  config.root = { path: path.join(image.dir, 'bundle', 'rootfs'), readonly: true };
  config.process = { ...config.process, terminal: false, env: [...config.process.env.filter((e) => !(e.split('=')[0] in env)), ...Object.entries(env).map(([k, v]) => `${k}=${v}`)] } as typeof config.process;
  config.mounts = [...config.mounts, { destination: '/tmp', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'mode=1777'] }];
  config.linux.namespaces = config.linux.namespaces.filter((ns) => ns.type !== 'network');
  fs.writeFileSync(path.join(bundle, 'config.json'), JSON.stringify(config));
  const child = spawn('runc', ['run', '--bundle', bundle, id], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.once('exit', () => {
    spawnSync('runc', ['delete', '--force', id]);
    fs.rmSync(bundle, { recursive: true, force: true });
  });
  return child;
}


/**
 * Environment image builders behind one interface: buildah (daemonless; `vfs` storage and `chroot`
 * isolation work as root without an engine) and `docker buildx` where an engine runs.
 * `provider.builder: auto` picks what is installed; neither installed is a clear error.
 */
import { spawn, spawnSync } from 'node:child_process';
import path from 'node:path';
import { BuildError } from '../errors';
import { isLoopbackRegistry, parseReference } from '../../providers/registry/reference';

export type BuilderName = 'buildah' | 'docker';

export interface BuildRequest {
  /** Folder holding `Containerfile` and whatever it copies. */
  readonly contextDir: string;
  /** The image to build and push, e.g. `127.0.0.1:5000/acme/svc:env-0123`. */
  readonly ref: string;
  /** The base image (for clear errors and plain-HTTP pulls from loopback registries). */
  readonly base: string;
  readonly onLine: (line: string) => void;
}

export interface Builder {
  readonly name: BuilderName;
  /** Builds `<contextDir>/Containerfile` as `ref` and pushes it to its registry. */
  buildAndPush(request: BuildRequest): Promise<void>;
}

export interface CommandResult {
  readonly code: number | null;
  readonly output: string;
}

/** Runs a command, passing each output line on; resolves with the exit code and the whole output. */
export function runCommand(command: string, args: readonly string[], onLine: (line: string) => void): Promise<CommandResult> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    let pending = '';
    const take = (chunk: Buffer): void => {
      const text = chunk.toString();
      output += text;
      pending += text;
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) if (line.trim()) onLine(line);
    };
    child.stdout.on('data', take);
    child.stderr.on('data', take);
    child.on('error', (error) => resolve({ code: -1, output: `${output}${error.message}` }));
    child.on('close', (code) => {
      if (pending.trim()) onLine(pending);
      resolve({ code, output });
    });
  });
}

/** Turns a failed build into an error that says what to fix: an unknown base, or the build's own output. */
export function buildFailure(what: string, request: Pick<BuildRequest, 'ref' | 'base'>, result: CommandResult): BuildError {
  const tail = result.output.trim().split('\n').slice(-15).join('\n');
  const pulling = /manifest unknown|name unknown|repository .* not found|unable to pull|initializing source|pull access denied|no such host|connection refused/i;
  if (pulling.test(result.output) && result.output.includes(request.base)) {
    return new BuildError('UNKNOWN_BASE', `the base image "${request.base}" of ${request.ref} could not be pulled:\n${tail}`);
  }
  return new BuildError('BUILD_FAILED', `${what} of ${request.ref} failed (exit ${result.code}):\n${tail}`);
}

function registryOf(ref: string): string {
  try {
    return parseReference(ref).registry;
  } catch {
    return '';
  }
}

export const buildah: Builder = {
  name: 'buildah',
  async buildAndPush(request) {
    const storage = ['--storage-driver', process.env.SGPU_BUILDAH_STORAGE_DRIVER ?? 'vfs'];
    const pullTls = `--tls-verify=${!isLoopbackRegistry(registryOf(request.base))}`;
    const pushTls = `--tls-verify=${!isLoopbackRegistry(registryOf(request.ref))}`;
    const file = path.join(request.contextDir, 'Containerfile');
    const build = await runCommand(
      'buildah',
      [...storage, 'bud', '--isolation', 'chroot', pullTls, '-f', file, '-t', request.ref, request.contextDir],
      request.onLine,
    );
    if (build.code !== 0) throw buildFailure('buildah bud', request, build);
    const push = await runCommand('buildah', [...storage, 'push', pushTls, request.ref, `docker://${request.ref}`], request.onLine);
    if (push.code !== 0) throw buildFailure('buildah push', request, push);
  },
};

export const docker: Builder = {
  name: 'docker',
  async buildAndPush(request) {
    const file = path.join(request.contextDir, 'Containerfile');
    const build = await runCommand(
      'docker',
      ['buildx', 'build', '--platform', 'linux/amd64', '--provenance=false', '-f', file, '-t', request.ref, '--push', request.contextDir],
      request.onLine,
    );
    if (build.code !== 0) throw buildFailure('docker buildx build', request, build);
  },
};

function works(command: string, args: readonly string[]): boolean {
  const result = spawnSync(command, args, { stdio: 'ignore', timeout: 15_000 });
  return result.status === 0;
}

export const isInstalled: Record<BuilderName, () => boolean> = {
  buildah: () => works('buildah', ['--version']),
  docker: () => works('docker', ['buildx', 'version']) && works('docker', ['info']),
};

/** The builder `provider.builder` names, or for `auto` the first installed; a clear error when none is. */
export function pickBuilder(setting: 'auto' | BuilderName, installed: Record<BuilderName, () => boolean> = isInstalled): Builder {
  const builders: Record<BuilderName, Builder> = { buildah, docker };
  if (setting !== 'auto') {
    if (!installed[setting]()) {
      throw new BuildError(
        'NO_BUILDER',
        setting === 'buildah'
          ? 'provider.builder is "buildah" but buildah is not installed (apt-get install buildah)'
          : 'provider.builder is "docker" but no Docker engine with buildx answers (docker buildx version; docker info)',
      );
    }
    return builders[setting];
  }
  for (const name of ['buildah', 'docker'] as const) if (installed[name]()) return builders[name];
  throw new BuildError(
    'NO_BUILDER',
    'no image builder found: install buildah (apt-get install buildah) or Docker with buildx and a running engine, then set provider.builder (auto picks what is installed)',
  );
}

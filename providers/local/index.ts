/**
 * The embedded `local` target: each function runs as shim processes on 127.0.0.1, kept up by a
 * supervisor per function, recorded in `.serverless-gpu/local/<stage>/state.json` under the service
 * folder. Same container contract as the clouds (PORT, the manifest, SIGTERM drain); no GPU.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { ProviderError } from '../../plugin/errors';
import type { ServiceConfig } from '../../plugin/config';
import type { FunctionSpec } from '../../plugin/spec';
import { SHIM_FILE } from '../../plugin/bundle';
import { weightsPath } from '../../plugin/weights-path';
import { PATHS } from '../../runtime-shim/protocol';
import type { DeployedFunction } from '../../runtime-shim/client';
import type { SupervisorPlan } from './supervisor';
import type { DeployRequest, DeployedService, FunctionStatus, Provider, ProviderIO } from '../types';

interface LocalFunctionState {
  readonly supervisorPid: number;
  readonly ports: readonly number[];
  readonly endpoints: readonly string[];
  readonly logFile: string;
}

interface LocalState {
  readonly service: string;
  readonly stage: string;
  readonly deployedAt: string;
  readonly functions: Record<string, LocalFunctionState>;
}

const READY_TIMEOUT_MS = 120_000;
const STOP_TIMEOUT_MS = 20_000;

/** Large inputs and outputs of a local function go through a folder beside its state. */
export function payloadStoreOf(config: ServiceConfig, functionName: string): string {
  return `${pathToFileURL(path.join(stateDir(config), 'payloads', functionName)).href}/`;
}

export function stateDir(config: ServiceConfig): string {
  return path.join(config.serviceDir, '.serverless-gpu', 'local', config.stage);
}

function stateFile(config: ServiceConfig): string {
  return path.join(stateDir(config), 'state.json');
}

export function readState(config: ServiceConfig): LocalState | undefined {
  try {
    return JSON.parse(fs.readFileSync(stateFile(config), 'utf8')) as LocalState;
  } catch {
    return undefined;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, host, () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

async function healthy(endpoint: string): Promise<boolean> {
  try {
    const response = await fetch(`${endpoint}${PATHS.health}`, { signal: AbortSignal.timeout(2_000) });
    await response.arrayBuffer();
    return response.ok;
  } catch {
    return false;
  }
}

function tail(file: string, lines = 20): string {
  try {
    return fs.readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

async function waitReady(name: string, endpoints: readonly string[], supervisorPid: number, logFile: string): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  const pending = new Set(endpoints);
  while (pending.size > 0) {
    for (const endpoint of [...pending]) if (await healthy(endpoint)) pending.delete(endpoint);
    if (pending.size === 0) return;
    if (!isAlive(supervisorPid) || Date.now() > deadline) {
      throw new ProviderError(
        'LOCAL_NOT_READY',
        `function ${name} did not become ready (${[...pending].join(', ')}); last lines of ${logFile}:\n${tail(logFile)}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Stops a supervisor's process group: SIGTERM (instances drain), SIGKILL after STOP_TIMEOUT_MS. */
async function stopGroup(pid: number): Promise<void> {
  const signalGroup = (signal: NodeJS.Signals): void => {
    try {
      process.kill(-pid, signal);
    } catch {
      // already gone
    }
  };
  signalGroup('SIGTERM');
  const deadline = Date.now() + STOP_TIMEOUT_MS;
  while (groupAlive(pid) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
  if (groupAlive(pid)) signalGroup('SIGKILL');
  while (groupAlive(pid) && Date.now() < deadline + 5_000) await new Promise((resolve) => setTimeout(resolve, 50));
}

function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function stopAll(state: LocalState, io: ProviderIO): Promise<void> {
  await Promise.all(
    Object.entries(state.functions).map(async ([name, fn]) => {
      io.verbose(`stopping ${name} (process group ${fn.supervisorPid})`);
      await stopGroup(fn.supervisorPid);
    }),
  );
}

async function startFunction(config: ServiceConfig, spec: FunctionSpec, artifactDir: string, manifestFile: string): Promise<LocalFunctionState> {
  const dir = stateDir(config);
  const instances = Math.max(1, spec.minInstances);
  const ports: number[] = [];
  for (let i = 0; i < instances; i += 1) {
    ports.push(config.local.basePort > 0 ? config.local.basePort + ports.length : await freePort(config.local.host));
  }
  const plan: SupervisorPlan = {
    function: spec.name,
    shim: path.join(artifactDir, SHIM_FILE),
    manifest: manifestFile,
    host: config.local.host,
    ports,
    env: { ...spec.env, SGPU_STAGE: config.stage, SGPU_PAYLOAD_STORE: payloadStoreOf(config, spec.name) },
  };
  const planFile = path.join(dir, `${spec.name}.plan.json`);
  fs.writeFileSync(planFile, JSON.stringify(plan, null, 2));
  const logFile = path.join(dir, `${spec.name}.log`);
  const out = fs.openSync(logFile, 'a');
  const child = spawn(process.execPath, [path.join(__dirname, 'supervisor.js'), planFile], {
    detached: true,
    stdio: ['ignore', out, out],
    cwd: config.serviceDir,
  });
  fs.closeSync(out);
  child.unref();
  if (child.pid === undefined) throw new ProviderError('LOCAL_SPAWN', `could not start function ${spec.name}`);
  const endpoints = ports.map((port) => `http://${config.local.host}:${port}`);
  return { supervisorPid: child.pid, ports, endpoints, logFile };
}

export const localProvider: Provider = {
  name: 'local',


  async deploy({ config, functions, io }: DeployRequest): Promise<DeployedService> {
    const dir = stateDir(config);
    fs.mkdirSync(dir, { recursive: true });
    const previous = readState(config);
    if (previous) {
      io.info(`replacing the processes of the previous local deploy (${previous.deployedAt})`);
      await stopAll(previous, io);
    }
    for (const { spec } of functions) fs.mkdirSync(weightsPath(config, spec), { recursive: true });
    const state: LocalState = { service: config.service, stage: config.stage, deployedAt: new Date().toISOString(), functions: {} };
    const progress = io.progress('gpu-local-deploy', `starting ${functions.length} function(s)`);
    try {
      for (const { spec, artifact } of functions) {
        progress.update(`starting ${spec.name}`);
        state.functions[spec.name] = await startFunction(config, spec, artifact.dir, artifact.manifestFile);
        // Recorded before waiting, so a failed deploy can still be removed.
        fs.writeFileSync(stateFile(config), JSON.stringify(state, null, 2));
      }
      for (const { spec } of functions) {
        const fn = state.functions[spec.name];
        progress.update(`waiting for ${spec.name} to finish setup`);
        await waitReady(spec.name, fn.endpoints, fn.supervisorPid, fn.logFile);
      }
    } finally {
      progress.remove();
    }
    const deployed: Record<string, DeployedFunction> = {};
    for (const [name, fn] of Object.entries(state.functions)) deployed[name] = { target: 'local', endpoints: fn.endpoints, payloadStore: payloadStoreOf(config, name) };
    return { functions: deployed };
  },

  async deployed(config) {
    const state = readState(config);
    if (!state) return undefined;
    const functions: Record<string, DeployedFunction> = {};
    for (const [name, fn] of Object.entries(state.functions)) functions[name] = { target: 'local', endpoints: fn.endpoints, payloadStore: payloadStoreOf(config, name) };
    return { functions };
  },

  async info(config): Promise<FunctionStatus[] | undefined> {
    const state = readState(config);
    if (!state) return undefined;
    return Promise.all(
      Object.entries(state.functions).map(async ([name, fn]) => {
        const ready = (await Promise.all(fn.endpoints.map(healthy))).filter(Boolean).length;
        const running = isAlive(fn.supervisorPid);
        return {
          name,
          target: 'local' as const,
          endpoints: fn.endpoints,
          state: running ? `${ready}/${fn.endpoints.length} instances ready` : 'stopped',
        };
      }),
    );
  },

  async logs(config, functionName) {
    const state = readState(config);
    const fn = state?.functions[functionName];
    if (!fn) throw new ProviderError('LOCAL_NOT_DEPLOYED', `function ${functionName} is not deployed locally for stage ${config.stage}`);
    return fs.existsSync(fn.logFile) ? fs.readFileSync(fn.logFile, 'utf8') : '';
  },

  async remove(config, io) {
    const state = readState(config);
    if (!state) {
      io.info(`nothing is deployed locally for stage ${config.stage}`);
      return;
    }
    await stopAll(state, io);
    fs.rmSync(stateFile(config), { force: true });
    io.info(`stopped ${Object.keys(state.functions).length} function(s)`);
  },
};

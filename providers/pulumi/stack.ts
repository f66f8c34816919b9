/**
 * The cloud targets' provider: `sls deploy`, `sls info` and `sls remove` through Pulumi's Automation API —
 * an inline program (providers/program.ts), one stack per service and stage, provider config from
 * serverless.yml, the state backend from PULUMI_BACKEND_URL or `provider.pulumi.backend` (else the CLI's
 * own login), progress streamed to the framework. The Automation API drives the `pulumi` CLI: where it
 * is missing, every command fails before any side effect, saying what to install.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import type { ServiceConfig } from '../../plugin/config';
import { ProviderError } from '../../plugin/errors';
import { programInput, pulumiConfig } from '../../plugin/program-input';
import type { DeployedFunction } from '../../runtime-shim/client';
import type { ProgramInput } from '../program';
import type { DeployRequest, DeployedService, FunctionStatus, Provider, ProviderIO } from '../types';

export const PULUMI_INSTALL_HINT =
  'install the Pulumi CLI (https://www.pulumi.com/docs/install/: `curl -fsSL https://get.pulumi.com | sh`, then add ~/.pulumi/bin to PATH) and log in to a state backend (`pulumi login`, or set PULUMI_BACKEND_URL / provider.pulumi.backend)';

/** Throws unless a `pulumi` CLI answers on PATH (or in PULUMI_HOME/bin). */
export function ensurePulumiCli(env: NodeJS.ProcessEnv = process.env): string {
  const candidates = ['pulumi', ...(env.PULUMI_HOME ? [path.join(env.PULUMI_HOME, 'bin', 'pulumi')] : [])];
  for (const command of candidates) {
    const result = spawnSync(command, ['version'], { encoding: 'utf8', env, timeout: 20_000 });
    if (result.status === 0) return result.stdout.trim();
  }
  throw new ProviderError('PULUMI_CLI_MISSING', `deploying to cloudrun, gke or batch needs the Pulumi CLI, which is not installed here: ${PULUMI_INSTALL_HINT}`);
}

/** Environment the Automation API runs the CLI with. */
export function stackEnv(config: ServiceConfig, env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const vars: Record<string, string> = { PULUMI_SKIP_UPDATE_CHECK: 'true' };
  const backend = env.PULUMI_BACKEND_URL ?? config.provider.pulumi?.backend;
  if (backend) vars.PULUMI_BACKEND_URL = backend;
  if (backend?.startsWith('file://') && env.PULUMI_CONFIG_PASSPHRASE === undefined && env.PULUMI_CONFIG_PASSPHRASE_FILE === undefined) {
    throw new ProviderError('PULUMI_PASSPHRASE', `a file:// state backend encrypts secrets with a passphrase: set PULUMI_CONFIG_PASSPHRASE (or PULUMI_CONFIG_PASSPHRASE_FILE)`);
  }
  return vars;
}

/** Stack outputs (as the program exports them) → what the client needs to reach each function. */
export function deployedFromOutputs(outputs: Record<string, { value: unknown }>): Record<string, DeployedFunction> {
  const functions = (outputs.functions?.value ?? {}) as Record<string, Record<string, string>>;
  const deployed: Record<string, DeployedFunction> = {};
  for (const [name, out] of Object.entries(functions)) {
    switch (out.target) {
      case 'cloudrun':
        deployed[name] = { target: 'cloudrun', endpoints: [out.url], auth: 'google-id-token', ...(out.payloadStore && { payloadStore: out.payloadStore }) };
        break;
      case 'gke':
        deployed[name] = { target: 'gke', endpoints: [out.gateway ?? out.address], ...(out.payloadStore && { payloadStore: out.payloadStore }) };
        break;
      case 'batch':
        deployed[name] = {
          target: 'batch',
          endpoints: [],
          batch: { region: out.region, jobQueue: out.jobQueueArn, jobDefinition: out.jobDefinitionArn, callBucket: out.callBucket, callPrefix: out.callPrefix },
        };
        break;
      default:
        break;
    }
  }
  return deployed;
}

/** Runs an Automation API step; its failure becomes a ProviderError carrying the CLI's own message. */
async function pulumiStep<T>(what: string, step: () => Promise<T>): Promise<T> {
  try {
    return await step();
  } catch (error) {
    if (error instanceof ProviderError) throw error;
    const err = error as Error & { commandResult?: { stderr?: string } };
    const detail = (err.commandResult?.stderr || err.message).trim().split('\n').slice(-8).join('\n');
    throw new ProviderError('PULUMI_FAILED', `${what} failed:\n${detail}`);
  }
}

async function openStack(config: ServiceConfig, input: ProgramInput | undefined) {
  ensurePulumiCli();
  return pulumiStep(`selecting stack ${config.service}/${config.stage}`, () => selectStack(config, input));
}

async function selectStack(config: ServiceConfig, input: ProgramInput | undefined) {
  const { LocalWorkspace } = await import('@pulumi/pulumi/automation');
  const { declareService } = await import('../program');
  const stack = await LocalWorkspace.createOrSelectStack(
    {
      projectName: config.service,
      stackName: config.stage,
      // remove/info need no program; the Automation API still wants one for an inline stack.
      program: async () => (input ? declareService(input) : {}),
    },
    {
      envVars: stackEnv(config),
      projectSettings: { name: config.service, runtime: 'nodejs', description: `serverless-gpu service ${config.service}` },
    },
  );
  await stack.setAllConfig(Object.fromEntries(Object.entries(pulumiConfig(config)).map(([key, value]) => [key, { value }])));
  return stack;
}

function streamer(io: ProviderIO, title: string): { onOutput: (text: string) => void; done: () => void } {
  const progress = io.progress('gpu-pulumi', title);
  return {
    onOutput: (text) => {
      for (const line of text.split('\n')) {
        if (!line.trim()) continue;
        io.verbose(line);
        if (/^\s+[+~-]{1,2}\s/.test(line) || /(creating|updating|deleting|created|updated|deleted)/.test(line)) progress.update(`${title}: ${line.trim().slice(0, 80)}`);
      }
    },
    done: () => progress.remove(),
  };
}

export const pulumiProvider: Provider = {
  name: 'pulumi',

  async deploy({ config, functions, io }: DeployRequest): Promise<DeployedService> {
    const images = Object.fromEntries(functions.filter((f) => f.image).map((f) => [f.spec.name, { reference: f.image!.reference }]));
    const missing = functions.filter((f) => !f.image).map((f) => f.spec.name);
    if (missing.length > 0) throw new ProviderError('NO_IMAGE', `no image was pushed for ${missing.join(', ')}: run sls package with provider.registry set`);
    const stack = await openStack(config, programInput(config, functions.map((f) => f.spec), images));
    const stream = streamer(io, `pulumi up ${config.service}/${config.stage}`);
    try {
      const result = await pulumiStep(`pulumi up of ${config.service}/${config.stage}`, () => stack.up({ onOutput: stream.onOutput, color: 'never' }));
      io.info(`pulumi up: ${JSON.stringify(result.summary.resourceChanges ?? {})}`);
      return { functions: deployedFromOutputs(result.outputs) };
    } finally {
      stream.done();
    }
  },

  async deployed(config) {
    const stack = await openStack(config, undefined);
    const outputs = await pulumiStep(`reading the outputs of ${config.service}/${config.stage}`, () => stack.outputs());
    return Object.keys(outputs).length ? { functions: deployedFromOutputs(outputs) } : undefined;
  },

  async info(config): Promise<FunctionStatus[] | undefined> {
    const deployed = await this.deployed(config);
    if (!deployed) return undefined;
    return Object.entries(deployed.functions).map(([name, fn]) => ({
      name,
      target: fn.target,
      endpoints: fn.batch ? [`${fn.batch.jobQueue} (job definition ${fn.batch.jobDefinition})`] : fn.endpoints,
      state: 'deployed (pulumi stack outputs)',
    }));
  },

  async logs(config, functionName) {
    throw new ProviderError('LOGS_NOT_AVAILABLE', `sls logs for ${functionName} on a cloud target reads the cloud's own logs: use gcloud logging read / aws logs tail (service ${config.service})`);
  },

  async remove(config, io) {
    const stack = await openStack(config, undefined);
    const stream = streamer(io, `pulumi destroy ${config.service}/${config.stage}`);
    try {
      await pulumiStep(`pulumi destroy of ${config.service}/${config.stage}`, () => stack.destroy({ onOutput: stream.onOutput, color: 'never' }));
    } finally {
      stream.done();
    }
    await pulumiStep(`removing stack ${config.stage}`, () => stack.workspace.removeStack(config.stage));
  },
};

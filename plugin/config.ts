/**
 * Reads the service's resolved serverless.yml into typed config, checking it against the plugin's schema.
 * Every problem is reported with its path (`functions.classify.gpu.count must be >= 1`).
 */
import Ajv, { type ErrorObject } from 'ajv';
import path from 'node:path';
import { ConfigError } from './errors';
import { pluginConfigSchema } from './schema';
import type { Target } from '../runtime-shim/types';

export interface ProviderConfig {
  readonly target: Target;
  readonly registry?: string;
  readonly builder: 'auto' | 'buildah' | 'docker';
  readonly gcp?: { readonly project?: string; readonly region?: string; readonly gpuZonalRedundancyDisabled?: boolean };
  readonly gke?: {
    /** An existing Autopilot cluster's name. */
    readonly cluster?: string;
    /** Create a regional Autopilot cluster for the service. */
    readonly createCluster?: boolean;
    /** The existing cluster's location (default gcp.region). */
    readonly location?: string;
    readonly namespace?: string;
    /** A gateway URL callers outside the cluster use. */
    readonly gateway?: string;
  };
  readonly aws?: {
    readonly region?: string;
    readonly subnets?: readonly string[];
    readonly securityGroups?: readonly string[];
    readonly spot?: boolean;
    readonly maxVcpus?: number;
    /** Bucket for batch calls' inputs and outputs; created by the stack when unset. */
    readonly callBucket?: string;
    /** Where Batch functions' images go (an ECR repository); default provider.registry. */
    readonly registry?: string;
  };
  readonly pulumi?: { readonly backend?: string };
  readonly weights?: {
    readonly bucket?: string;
    /** Synced versions kept per prefix, the current one included (default 3). */
    readonly keep?: number;
  };
  readonly environment: Readonly<Record<string, string>>;
}

/** What serverless.yml says of one function: the handler and per-stage overrides. */
export interface FunctionConfig {
  readonly name: string;
  /** `src/classify.classify`: file (without extension) and export. */
  readonly handler: string;
  readonly overrides: Readonly<Record<string, unknown>>;
}

export interface ServiceConfig {
  readonly service: string;
  readonly stage: string;
  readonly serviceDir: string;
  readonly provider: ProviderConfig;
  readonly functions: readonly FunctionConfig[];
  readonly client: { readonly out: string; readonly name: string };
  readonly local: { readonly host: '127.0.0.1'; readonly basePort: number };
  /** Extra modules kept out of bundles and installed in the image. */
  readonly external: readonly string[];
}

/** The slice of the framework's resolved service the plugin reads. */
export interface RawService {
  readonly service: string;
  readonly provider: Record<string, unknown> & { stage?: string };
  readonly functions?: Record<string, Record<string, unknown>>;
  readonly custom?: Record<string, unknown>;
}

export const DEFAULTS = {
  target: 'cloudrun' as Target,
  builder: 'auto' as const,
  clientOut: 'generated/client',
  localBasePort: 0,
} as const;

const ajv = new Ajv({ allErrors: true, strict: false, verbose: true });
const validateConfig = ajv.compile(pluginConfigSchema);

function dotted(instancePath: string): string {
  return instancePath
    .split('/')
    .slice(1)
    .map((part) => part.replace(/~1/g, '/').replace(/~0/g, '~'))
    .join('.');
}

function describe(error: ErrorObject): string {
  const where = dotted(error.instancePath);
  switch (error.keyword) {
    case 'additionalProperties':
      return `Unknown option in ${where || 'the config'}: "${(error.params as { additionalProperty: string }).additionalProperty}"`;
    case 'required':
      return `${where ? `${where}.` : ''}${(error.params as { missingProperty: string }).missingProperty} is required`;
    case 'enum':
      return `${where} must be one of ${(error.params as { allowedValues: unknown[] }).allowedValues.map((v) => JSON.stringify(v)).join(', ')}`;
    case 'const':
      return `${where} must be ${JSON.stringify((error.params as { allowedValue: unknown }).allowedValue)}`;
    case 'pattern':
      return `${where} has an invalid format (${JSON.stringify(error.data)})`;
    default:
      return `${where} ${error.message ?? 'is invalid'}`;
  }
}

const ANY_OF_HINTS: Record<string, string> = {
  gpu: `must be a GPU type like "L4" or { type: "L4", count: 1 }`,
  timeout: `must be a duration like "60s", "15m", "2h" or a number of seconds`,
  memory: `must be a size like "16Gi", "512Mi" or a number of MiB`,
};

/** Turns ajv's errors into one line per problem, the most specific first. */
export function formatSchemaErrors(errors: readonly ErrorObject[]): string[] {
  const anyOfPaths = new Set(errors.filter((e) => e.keyword === 'anyOf').map((e) => e.instancePath));
  const lines: string[] = [];
  for (const error of errors) {
    if (error.keyword === 'anyOf') {
      const where = dotted(error.instancePath);
      const field = where.split('.').pop() ?? '';
      lines.push(`${where} ${ANY_OF_HINTS[field] ?? 'has an invalid value'}`);
    } else if (!anyOfPaths.has(error.instancePath) || error.keyword === 'additionalProperties') {
      // Branch errors of an anyOf say the same thing worse; the anyOf line stands for them.
      lines.push(describe(error));
    }
  }
  return [...new Set(lines)];
}

export function readServiceConfig(raw: RawService, options: { stage?: string; serviceDir: string; file?: string }): ServiceConfig {
  const file = options.file ?? 'serverless.yml';
  if (!validateConfig(raw)) {
    const lines = formatSchemaErrors(validateConfig.errors ?? []);
    throw new ConfigError(file, lines.length === 1 ? lines[0] : `\n  - ${lines.join('\n  - ')}`);
  }
  const provider = raw.provider;
  const custom = ((raw.custom ?? {}).gpu ?? {}) as {
    client?: { out?: string; name?: string };
    local?: { host?: '127.0.0.1'; basePort?: number };
    external?: string[];
  };
  const functions = Object.entries(raw.functions ?? {}).map(([name, fn]): FunctionConfig => {
    const { handler, name: _deployedName, events: _events, ...overrides } = fn;
    return { name, handler: handler as string, overrides };
  });
  if (functions.length === 0) throw new ConfigError(`${file}: functions`, 'the service declares no functions');
  return {
    service: raw.service,
    stage: options.stage ?? provider.stage ?? 'dev',
    serviceDir: options.serviceDir,
    provider: {
      target: (provider.target as Target | undefined) ?? DEFAULTS.target,
      registry: provider.registry as string | undefined,
      builder: (provider.builder as ProviderConfig['builder'] | undefined) ?? DEFAULTS.builder,
      gcp: provider.gcp as ProviderConfig['gcp'],
      gke: provider.gke as ProviderConfig['gke'],
      aws: provider.aws as ProviderConfig['aws'],
      pulumi: provider.pulumi as ProviderConfig['pulumi'],
      weights: provider.weights as ProviderConfig['weights'],
      environment: (provider.environment as Record<string, string> | undefined) ?? {},
    },
    functions,
    client: {
      out: path.resolve(options.serviceDir, custom.client?.out ?? DEFAULTS.clientOut),
      name: custom.client?.name ?? `${raw.service}-client`,
    },
    local: { host: '127.0.0.1', basePort: custom.local?.basePort ?? DEFAULTS.localBasePort },
    external: custom.external ?? [],
  };
}

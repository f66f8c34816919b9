/**
 * One function spec per function: the annotation in the handler's code, overridden per stage by
 * `functions.<name>` in serverless.yml, with defaults, validated once. Errors name the function, the field
 * and where the value came from (the handler file or serverless.yml).
 */
import Ajv from 'ajv';
import { ConfigError } from './errors';
import { formatSchemaErrors, type FunctionConfig, type ServiceConfig } from './config';
import { functionProperties } from './schema';
import { parseDurationMs, parseMemoryMiB } from './units';
import { Image, type ImageStep } from '../runtime-shim/image';
import type { Target } from '../runtime-shim/types';

export interface GpuRequest {
  readonly type: string;
  readonly count: number;
}

export interface FunctionSpec {
  readonly name: string;
  readonly service: string;
  readonly stage: string;
  /** Absolute path of the handler's source file. */
  readonly file: string;
  /** The file relative to the service folder, for messages. */
  readonly relFile: string;
  readonly exportName: string;
  readonly target: Target;
  readonly gpu?: GpuRequest;
  readonly cpu?: number;
  readonly memoryMiB?: number;
  readonly minInstances: number;
  readonly maxInstances: number;
  readonly concurrency: number;
  readonly timeoutMs: number;
  readonly retries: number;
  readonly env: Readonly<Record<string, string>>;
  readonly secrets: readonly string[];
  readonly image?: { readonly steps: readonly ImageStep[]; readonly hash: string };
  readonly weights?: {
    readonly prefix: string;
    readonly source?: string;
    readonly bucket?: string;
    /** The synced version to read, set by `sls deploy` after the weights sync (absent: the prefix as it is). */
    readonly version?: string;
  };
  /** IAM members allowed to call it (Cloud Run), e.g. `serviceAccount:api@acme.iam.gserviceaccount.com`. */
  readonly invokers: readonly string[];
  /** Callable by anyone (Cloud Run `allUsers`); never the default. */
  readonly public: boolean;
}

export const SPEC_DEFAULTS = {
  minInstances: 0,
  maxInstances: 5,
  concurrency: 1,
  timeoutMs: 300_000,
  retries: 0,
} as const;

const annotationSchema = {
  type: 'object',
  properties: {
    ...functionProperties.properties,
    handler: undefined,
    image: { type: 'object' },
  },
  additionalProperties: false,
};
delete (annotationSchema.properties as Record<string, unknown>).handler;
const validateAnnotation = new Ajv({ allErrors: true, strict: false, verbose: true }).compile(annotationSchema);

/** Options as read from the annotation, with the `Image` turned into its steps. */
export type AnnotationOptions = Readonly<Record<string, unknown>>;

function normaliseImage(value: unknown, where: string): FunctionSpec['image'] {
  if (value === undefined) return undefined;
  if (Image.isImage(value)) return { steps: value.steps, hash: value.hash };
  const steps = (value as { steps?: unknown }).steps;
  if (Array.isArray(steps)) {
    try {
      const image = Image.fromSteps(steps as ImageStep[]);
      return { steps: image.steps, hash: image.hash };
    } catch (error) {
      throw new ConfigError(`${where}.image`, (error as Error).message);
    }
  }
  throw new ConfigError(`${where}.image`, 'must be an Image, e.g. Image.from("node:20-slim")');
}

function gpuRequest(value: unknown): GpuRequest | undefined {
  if (value === undefined) return undefined;
  if (typeof value === 'string') return { type: value, count: 1 };
  const gpu = value as { type: string; count?: number };
  return { type: gpu.type, count: gpu.count ?? 1 };
}

export function resolveSpec(
  config: ServiceConfig,
  fn: FunctionConfig,
  source: { file: string; relFile: string; exportName: string },
  annotation: AnnotationOptions,
): FunctionSpec {
  const annotationWhere = `${source.relFile}: ${source.exportName}`;
  if (!validateAnnotation(annotation)) {
    const lines = formatSchemaErrors(validateAnnotation.errors ?? []).map((line) => line.replace(/^Unknown option in the config/, 'Unknown option'));
    throw new ConfigError(annotationWhere, lines.join('; '));
  }
  const merged: Record<string, unknown> = { ...annotation, ...fn.overrides };
  const where = (field: string): string =>
    field in fn.overrides ? `functions.${fn.name}.${field}` : `${annotationWhere} (function ${fn.name}) option ${field}`;

  const minInstances = (merged.minInstances as number | undefined) ?? SPEC_DEFAULTS.minInstances;
  const maxInstances = (merged.maxInstances as number | undefined) ?? Math.max(SPEC_DEFAULTS.maxInstances, minInstances);
  if (minInstances > maxInstances) {
    throw new ConfigError(where('minInstances'), `minInstances (${minInstances}) must not exceed maxInstances (${maxInstances})`);
  }
  const timeoutMs = merged.timeout === undefined ? SPEC_DEFAULTS.timeoutMs : parseDurationMs(merged.timeout);
  if (timeoutMs === undefined) throw new ConfigError(where('timeout'), `must be a duration like "60s", got ${JSON.stringify(merged.timeout)}`);
  const memoryMiB = merged.memory === undefined ? undefined : parseMemoryMiB(merged.memory);
  if (merged.memory !== undefined && memoryMiB === undefined) {
    throw new ConfigError(where('memory'), `must be a size like "16Gi", got ${JSON.stringify(merged.memory)}`);
  }
  const weights = merged.weights as { prefix: string; source?: string } | undefined;
  return {
    name: fn.name,
    service: config.service,
    stage: config.stage,
    file: source.file,
    relFile: source.relFile,
    exportName: source.exportName,
    target: (merged.target as Target | undefined) ?? config.provider.target,
    gpu: gpuRequest(merged.gpu),
    cpu: merged.cpu as number | undefined,
    memoryMiB,
    minInstances,
    maxInstances,
    concurrency: (merged.concurrency as number | undefined) ?? SPEC_DEFAULTS.concurrency,
    timeoutMs,
    retries: (merged.retries as number | undefined) ?? SPEC_DEFAULTS.retries,
    env: { ...config.provider.environment, ...((merged.env as Record<string, string> | undefined) ?? {}) },
    secrets: (merged.secrets as string[] | undefined) ?? [],
    image: normaliseImage(merged.image, where('image').replace(/ option image$/, '')),
    weights: weights && { prefix: weights.prefix, source: weights.source, bucket: config.provider.weights?.bucket },
    invokers: (merged.invokers as string[] | undefined) ?? [],
    public: (merged.public as boolean | undefined) ?? false,
  };
}

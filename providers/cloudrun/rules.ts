/**
 * What Cloud Run can run, as pure checks: the plugin calls them at `sls package` (no Pulumi loaded),
 * the component again before it creates anything.
 */
import { CLOUD_RUN_GPUS, gpuTypesOf } from '../../plugin/catalogue';
import type { FunctionSpec } from '../../plugin/spec';
import { resourceName } from '../pulumi/args';

/** Cloud Run service limits (Cloud Run docs, read 2026-11-22). */
export const CLOUD_RUN_LIMITS = { maxTimeoutSeconds: 3600, maxConcurrency: 1000 } as const;

/** Env names Cloud Run sets itself and refuses in a container's env. */
const RESERVED_ENV = ['PORT', 'K_SERVICE', 'K_REVISION', 'K_CONFIGURATION'];

/** Members that open the service to anyone (any Google account, for the second): only with `public: true`. */
const PUBLIC_MEMBERS = ['allUsers', 'allAuthenticatedUsers'];

/** The request timeout in whole seconds (at least one). */
export function timeoutSeconds(spec: Pick<FunctionSpec, 'timeoutMs'>): number {
  return Math.max(1, Math.ceil(spec.timeoutMs / 1000));
}

/** The Cloud Run service's name: `<service>-<stage>-<function>`. */
export function serviceNameOf(spec: Pick<FunctionSpec, 'service' | 'stage' | 'name'>): string {
  return resourceName([spec.service, spec.stage, spec.name]);
}

/** A service account id (6-30 characters, starting with a letter) unique to the service, stage and function. */
export function serviceAccountId(spec: Pick<FunctionSpec, 'service' | 'stage' | 'name'>): string {
  return resourceName(['sgpu', spec.service, spec.stage, spec.name], 30);
}

/** Why a spec cannot run on Cloud Run, one message per problem, each naming the field; empty when it can. */
export function cloudRunProblems(spec: FunctionSpec): string[] {
  const problems: string[] = [];
  if (spec.gpu) {
    const gpu = CLOUD_RUN_GPUS[spec.gpu.type];
    if (!gpu) problems.push(`gpu.type "${spec.gpu.type}" is not offered by Cloud Run (offered: ${gpuTypesOf('cloudrun').join(', ')})`);
    if (spec.gpu.count !== 1) problems.push(`gpu.count must be 1 on Cloud Run, got ${spec.gpu.count}`);
    if (gpu && spec.cpu !== undefined && spec.cpu < gpu.minCpu) {
      problems.push(`cpu ${spec.cpu} is below the ${gpu.minCpu} vCPU an ${spec.gpu.type} needs`);
    }
    if (gpu && spec.memoryMiB !== undefined && spec.memoryMiB < gpu.minMemoryMiB) {
      problems.push(`memory ${spec.memoryMiB}Mi is below the ${gpu.minMemoryMiB}Mi an ${spec.gpu.type} needs`);
    }
  }
  if (timeoutSeconds(spec) > CLOUD_RUN_LIMITS.maxTimeoutSeconds) {
    problems.push(`timeout ${timeoutSeconds(spec)}s exceeds Cloud Run's ${CLOUD_RUN_LIMITS.maxTimeoutSeconds}s`);
  }
  if (spec.concurrency > CLOUD_RUN_LIMITS.maxConcurrency) {
    problems.push(`concurrency ${spec.concurrency} is above ${CLOUD_RUN_LIMITS.maxConcurrency}, Cloud Run's maximum`);
  }
  for (const member of spec.public ? [] : spec.invokers.filter((m) => PUBLIC_MEMBERS.includes(m))) {
    problems.push(`invokers include "${member}": set public: true to let anyone call the function`);
  }
  for (const name of Object.keys(spec.env).filter((n) => RESERVED_ENV.includes(n))) {
    problems.push(`env.${name} is set by Cloud Run itself`);
  }
  for (const name of spec.secrets.filter((n) => Object.hasOwn(spec.env, n))) {
    problems.push(`secrets "${name}" is also set in env`);
  }
  if (!/^[a-z]/.test(serviceNameOf(spec))) {
    problems.push(`service "${spec.service}": the Cloud Run service name "${serviceNameOf(spec)}" must start with a letter`);
  }
  return problems;
}

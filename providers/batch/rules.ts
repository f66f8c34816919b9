/**
 * What AWS Batch can run, as pure checks and choices: the plugin calls them at `sls package` (no Pulumi
 * loaded), the component again before it creates anything.
 */
import { EC2_GPU_INSTANCES, ECS_RESERVED_MEMORY_MIB, batchInstanceTypes, defaultResources, gpuTypesOf } from '../../plugin/catalogue';
import type { FunctionSpec } from '../../plugin/spec';

/**
 * CPU families for functions without a GPU, with their largest size (m6i.32xlarge, c6i.32xlarge; AWS
 * instance specifications, read 2026-11-22). Batch picks a size within the family.
 */
export const CPU_FAMILIES: readonly { readonly family: string; readonly vcpus: number; readonly memoryMiB: number }[] = [
  { family: 'm6i', vcpus: 128, memoryMiB: 512 * 1024 },
  { family: 'c6i', vcpus: 128, memoryMiB: 256 * 1024 },
];


/** What a job asks for: the spec's CPU and memory, or the defaults for its GPU. EC2 jobs take whole vCPUs. */
export function jobResources(spec: FunctionSpec): { vcpus: number; memoryMiB: number } {
  const defaults = defaultResources('batch', spec.gpu);
  return { vcpus: Math.max(1, Math.ceil(spec.cpu ?? defaults.cpu)), memoryMiB: Math.floor(spec.memoryMiB ?? defaults.memoryMiB) };
}

/** Instances a job could run on: the GPU type's instances, or the CPU families at their largest size. */
function candidates(spec: FunctionSpec): { name: string; gpus: number; vcpus: number; memoryMiB: number }[] {
  if (!spec.gpu) return CPU_FAMILIES.map((f) => ({ name: f.family, gpus: 0, vcpus: f.vcpus, memoryMiB: f.memoryMiB }));
  const gpu = spec.gpu.type;
  return EC2_GPU_INSTANCES.filter((i) => i.gpu === gpu).map((i) => ({ name: i.type, gpus: i.gpus, vcpus: i.vcpus, memoryMiB: i.memoryMiB }));
}

/** Instance types (or CPU families) that fit the job: what the compute environment must offer. */
export function jobInstanceTypes(spec: FunctionSpec): string[] {
  const { vcpus, memoryMiB } = jobResources(spec);
  if (spec.gpu) return batchInstanceTypes({ gpu: spec.gpu.type, count: spec.gpu.count, vcpus, memoryMiB });
  return candidates(spec)
    .filter((c) => c.vcpus >= vcpus && c.memoryMiB - ECS_RESERVED_MEMORY_MIB >= memoryMiB)
    .map((c) => c.name);
}

/** Why a spec cannot run on Batch, one message per field; empty when it can. */
export function batchProblems(spec: FunctionSpec): string[] {
  const problems: string[] = [];
  if (spec.minInstances > 0) {
    problems.push('minInstances is not supported on batch: jobs start on demand (use cloudrun or gke to keep instances warm)');
  }
  if (spec.weights && weightsPrefixOf(spec.weights) === '') {
    problems.push(`weights.prefix must name a folder in the bucket, got ${JSON.stringify(spec.weights.prefix)}`);
  }
  if (spec.gpu && !gpuTypesOf('batch').includes(spec.gpu.type)) {
    problems.push(`gpu.type "${spec.gpu.type}" is not offered on batch; choose one of ${gpuTypesOf('batch').join(', ')}`);
    return problems;
  }
  if (jobInstanceTypes(spec).length === 0) problems.push(tooLarge(spec));
  return problems;
}

/** Names the first request (GPU count, then CPU, then memory) no instance can meet. */
function tooLarge(spec: FunctionSpec): string {
  const { vcpus, memoryMiB } = jobResources(spec);
  const most = (values: number[]): number => Math.max(...values);
  let fits = candidates(spec);
  if (spec.gpu) {
    const { type, count } = spec.gpu;
    const withGpus = fits.filter((c) => c.gpus >= count);
    if (withGpus.length === 0) return `gpu.count ${count} is more than any ${type} instance has (at most ${most(fits.map((c) => c.gpus))})`;
    fits = withGpus;
  }
  const what = spec.gpu ? `${spec.gpu.type} instance with ${spec.gpu.count} GPU(s)` : `CPU instance (${fits.map((c) => c.name).join(', ')})`;
  const withCpu = fits.filter((c) => c.vcpus >= vcpus);
  if (withCpu.length === 0) return `cpu ${vcpus} is more than any ${what} has (at most ${most(fits.map((c) => c.vcpus))} vCPUs)`;
  const memory = most(withCpu.map((c) => c.memoryMiB - ECS_RESERVED_MEMORY_MIB));
  return `memory ${memoryMiB} MiB is more than any ${what} and ${vcpus} vCPUs leaves for a job (at most ${memory} MiB)`;
}

/** The weights folder without leading or trailing slashes: `models/clip/` → `models/clip`. */
export function weightsPrefixOf(weights: { readonly prefix: string }): string {
  return weights.prefix.replace(/^\/+|\/+$/g, '');
}

/** The most memory a job can be given on the largest instance that fits it (ECS keeps some for itself). */
export function largestJobMemoryMiB(spec: FunctionSpec): number {
  const fitting = new Set(jobInstanceTypes(spec));
  return Math.max(...candidates(spec).filter((c) => fitting.has(c.name)).map((c) => c.memoryMiB - ECS_RESERVED_MEMORY_MIB));
}

/**
 * GPUs as each target offers them: tables, and pure functions that choose from them.
 *
 * Source: shared/CLOUD_REFERENCE.md (read 2026-11-22 from the Cloud Run GPU docs, the GKE accelerator
 * label list and EC2 instance families), and AWS's published instance specifications. Availability
 * differs per region and quota; these tables say what a target can offer at all, not what a project has.
 */

/** Cloud Run services: one GPU per instance, with CPU and memory minimums. */
export const CLOUD_RUN_GPUS: Readonly<Record<string, { accelerator: string; minCpu: number; minMemoryMiB: number }>> = {
  L4: { accelerator: 'nvidia-l4', minCpu: 4, minMemoryMiB: 16 * 1024 },
  'RTX-PRO-6000': { accelerator: 'nvidia-rtx-pro-6000', minCpu: 20, minMemoryMiB: 80 * 1024 },
};

/** GKE Autopilot: the `cloud.google.com/gke-accelerator` node selector value per GPU type. */
export const GKE_ACCELERATORS: Readonly<Record<string, string>> = {
  T4: 'nvidia-tesla-t4',
  L4: 'nvidia-l4',
  A100: 'nvidia-tesla-a100',
  'A100-80GB': 'nvidia-a100-80gb',
  H100: 'nvidia-h100-80gb',
  'H100-MEGA': 'nvidia-h100-mega-80gb',
  H200: 'nvidia-h200-141gb',
  B200: 'nvidia-b200',
  'RTX-PRO-6000': 'nvidia-rtx-pro-6000',
};

export interface Ec2GpuInstance {
  readonly type: string;
  readonly gpu: string;
  readonly gpus: number;
  readonly vcpus: number;
  readonly memoryMiB: number;
}

/** EC2 GPU instance types Batch can launch on the ECS AL2023 NVIDIA image. */
export const EC2_GPU_INSTANCES: readonly Ec2GpuInstance[] = [
  { type: 'g4dn.xlarge', gpu: 'T4', gpus: 1, vcpus: 4, memoryMiB: 16 * 1024 },
  { type: 'g4dn.2xlarge', gpu: 'T4', gpus: 1, vcpus: 8, memoryMiB: 32 * 1024 },
  { type: 'g4dn.12xlarge', gpu: 'T4', gpus: 4, vcpus: 48, memoryMiB: 192 * 1024 },
  { type: 'g5.xlarge', gpu: 'A10G', gpus: 1, vcpus: 4, memoryMiB: 16 * 1024 },
  { type: 'g5.2xlarge', gpu: 'A10G', gpus: 1, vcpus: 8, memoryMiB: 32 * 1024 },
  { type: 'g5.4xlarge', gpu: 'A10G', gpus: 1, vcpus: 16, memoryMiB: 64 * 1024 },
  { type: 'g5.12xlarge', gpu: 'A10G', gpus: 4, vcpus: 48, memoryMiB: 192 * 1024 },
  { type: 'g6.xlarge', gpu: 'L4', gpus: 1, vcpus: 4, memoryMiB: 16 * 1024 },
  { type: 'g6.2xlarge', gpu: 'L4', gpus: 1, vcpus: 8, memoryMiB: 32 * 1024 },
  { type: 'g6.4xlarge', gpu: 'L4', gpus: 1, vcpus: 16, memoryMiB: 64 * 1024 },
  { type: 'g6.12xlarge', gpu: 'L4', gpus: 4, vcpus: 48, memoryMiB: 192 * 1024 },
  { type: 'g6.48xlarge', gpu: 'L4', gpus: 8, vcpus: 192, memoryMiB: 768 * 1024 },
  { type: 'p4d.24xlarge', gpu: 'A100', gpus: 8, vcpus: 96, memoryMiB: 1152 * 1024 },
  { type: 'p5.48xlarge', gpu: 'H100', gpus: 8, vcpus: 192, memoryMiB: 2048 * 1024 },
];

/** Memory ECS keeps for itself on an instance: ask for a little less than the nominal RAM. */
export const ECS_RESERVED_MEMORY_MIB = 1024;

/** Instance types that fit a job: enough GPUs of the type, vCPUs and memory (less what ECS keeps). */
export function batchInstanceTypes(request: { gpu: string; count: number; vcpus: number; memoryMiB: number }): string[] {
  return EC2_GPU_INSTANCES.filter(
    (i) => i.gpu === request.gpu && i.gpus >= request.count && i.vcpus >= request.vcpus && i.memoryMiB - ECS_RESERVED_MEMORY_MIB >= request.memoryMiB,
  ).map((i) => i.type);
}

/** GPU types a target offers, for messages. */
export function gpuTypesOf(target: 'cloudrun' | 'gke' | 'batch'): string[] {
  if (target === 'cloudrun') return Object.keys(CLOUD_RUN_GPUS);
  if (target === 'gke') return Object.keys(GKE_ACCELERATORS);
  return [...new Set(EC2_GPU_INSTANCES.map((i) => i.gpu))];
}

/** Defaults when a spec leaves CPU or memory unset: the GPU's minimum, or a small CPU container. */
export function defaultResources(target: 'cloudrun' | 'gke' | 'batch', gpu: { type: string; count: number } | undefined): { cpu: number; memoryMiB: number } {
  if (gpu && target === 'cloudrun' && CLOUD_RUN_GPUS[gpu.type]) {
    return { cpu: CLOUD_RUN_GPUS[gpu.type].minCpu, memoryMiB: CLOUD_RUN_GPUS[gpu.type].minMemoryMiB };
  }
  if (gpu) return { cpu: 4 * gpu.count, memoryMiB: 15 * 1024 * gpu.count };
  return { cpu: 1, memoryMiB: 2048 };
}

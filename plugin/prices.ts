/**
 * Hourly list prices of one GPU, per target, for the cost floor `sls gpu plan` prints (minInstances ×
 * GPUs × price). GPU only: CPU, memory, storage and egress come on top.
 *
 * Source: Google Cloud's public pricing pages (Cloud Run GPU, instance-based billing without zonal
 * redundancy; Compute Engine accelerator-optimized G2/A2/A3 on-demand, as GKE Autopilot's Accelerator
 * class bills the node), us-central1, as recorded on 2025-11-01. Approximate: they could not be checked
 * against the live pages from this machine (no internet). Batch has no floor: it keeps nothing warm.
 */
export const PRICE_SOURCE = 'Google Cloud list prices, us-central1, recorded 2025-11-01 (approximate; GPU only)';

export const GPU_PRICE_PER_HOUR: Readonly<Record<'cloudrun' | 'gke', Readonly<Record<string, number>>>> = {
  cloudrun: { L4: 0.672, 'RTX-PRO-6000': 3.4 },
  gke: { T4: 0.35, L4: 0.71, A100: 2.93, 'A100-80GB': 3.93, H100: 11.06, H200: 12.5 },
};

export interface CostLine {
  readonly function: string;
  readonly target: string;
  readonly gpu: string;
  readonly instances: number;
  readonly perHour: number | undefined;
}

/** The hourly floor of what the specs keep warm; unknown prices are listed, not guessed. */
export function costFloor(specs: ReadonlyArray<{ name: string; target: string; minInstances: number; gpu?: { type: string; count: number } }>): {
  total: number;
  lines: CostLine[];
} {
  const lines: CostLine[] = [];
  for (const spec of specs) {
    if (!spec.gpu || spec.minInstances === 0 || (spec.target !== 'cloudrun' && spec.target !== 'gke')) continue;
    const price = GPU_PRICE_PER_HOUR[spec.target][spec.gpu.type];
    lines.push({
      function: spec.name,
      target: spec.target,
      gpu: `${spec.gpu.count}× ${spec.gpu.type}`,
      instances: spec.minInstances,
      perHour: price === undefined ? undefined : price * spec.gpu.count * spec.minInstances,
    });
  }
  const total = lines.reduce((sum, line) => sum + (line.perHour ?? 0), 0);
  return { total: Math.round(total * 1000) / 1000, lines };
}

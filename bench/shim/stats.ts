/** Percentiles and the per-run summary printed by run.ts. */
import type { LoadResult } from './load';

/** Nearest-rank percentile (p in 0..100) of values sorted ascending; NaN when there are none. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1];
}

export interface Summary {
  /** Requests completed, errors included. */
  readonly requests: number;
  readonly errors: number;
  readonly seconds: number;
  /** Successful requests per second. */
  readonly rps: number;
  readonly p50: number;
  readonly p99: number;
}

export function summarise(result: LoadResult): Summary {
  const sorted = Float64Array.from(result.latenciesMs).sort();
  const values = Array.from(sorted);
  return {
    requests: result.count,
    errors: result.errors,
    seconds: result.seconds,
    rps: (result.count - result.errors) / result.seconds,
    p50: percentile(values, 50),
    p99: percentile(values, 99),
  };
}

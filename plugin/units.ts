/** Parsing of the units serverless.yml and annotations use: durations and memory sizes. */

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 };

/** `'60s'` → 60000; a number is seconds. Undefined for anything else. */
export function parseDurationMs(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) && value > 0 ? Math.round(value * 1000) : undefined;
  if (typeof value !== 'string') return undefined;
  const match = /^([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)$/.exec(value.trim());
  if (!match) return undefined;
  const ms = Math.round(Number(match[1]) * DURATION_UNITS[match[2]]);
  return ms > 0 ? ms : undefined;
}

const MEMORY_UNITS: Record<string, number> = { Mi: 1, Gi: 1024, M: 1_000_000 / 1_048_576, G: 1e9 / 1_048_576 };

/** `'16Gi'` → 16384 (MiB); a number is MiB. Undefined for anything else. */
export function parseMemoryMiB(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isInteger(value) && value > 0 ? value : undefined;
  if (typeof value !== 'string') return undefined;
  const match = /^([0-9]+(?:\.[0-9]+)?)(Mi|Gi|M|G)$/.exec(value.trim());
  if (!match) return undefined;
  const mib = Math.ceil(Number(match[1]) * MEMORY_UNITS[match[2]]);
  return mib > 0 ? mib : undefined;
}

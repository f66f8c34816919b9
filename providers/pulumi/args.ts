/**
 * What every function component gets: the resolved spec (plain data, see plugin/spec.ts), the image it
 * runs (pinned by digest) and the service-wide settings of its target. One ComponentResource per
 * function per target consumes these; the program (providers/program.ts) wires them together.
 */
import type { FunctionSpec } from '../../plugin/spec';
import { weightsKeys } from '../storage/weights-layout';

export interface FunctionArgs {
  /** The function's resolved spec: GPU, scaling, concurrency, timeout, env, secrets, weights. */
  readonly spec: FunctionSpec;
  /** The image to run, by digest: `registry/repository@sha256:...`. */
  readonly image: string;
}

/** Where the shim listens in every container (the Cloud Run contract; PORT is set to it). */
export const CONTAINER_PORT = 8080;
/** The shim's readiness path: 200 only once setup has finished. */
export const READINESS_PATH = '/healthz';
/** Where weights are mounted (Cloud Run, GKE) or fetched (Batch) inside the container. */
export { CONTAINER_WEIGHTS_PATH } from '../../plugin/weights-path';

/**
 * The folder of the bucket a read-only mount shows at the weights path: the synced version laid out by
 * path (`<prefix>/versions/<version>`, see providers/storage/weights-layout.ts), or the prefix itself
 * when nothing was synced (weights put there by other means).
 */
export function weightsMountDir(weights: { readonly prefix: string; readonly version?: string }): string {
  const keys = weightsKeys(weights.prefix);
  return weights.version ? keys.mountDir(weights.version) : keys.base;
}

/** Labels every resource carries, so an infra team can find what a service created. */
export function commonLabels(spec: Pick<FunctionSpec, 'service' | 'stage' | 'name'>): Record<string, string> {
  const clean = (value: string): string => value.toLowerCase().replace(/[^a-z0-9_-]/g, '-').slice(0, 63);
  return { 'managed-by': 'serverless-gpu', service: clean(spec.service), stage: clean(spec.stage), function: clean(spec.name) };
}

/** A resource name from parts: lowercase, dashes, at most `max` characters (a hash suffix keeps it unique). */
export function resourceName(parts: readonly string[], max = 63): string {
  const joined = parts.join('-').toLowerCase().replace(/[^a-z0-9-]/g, '-').replace(/-+/g, '-').replace(/^-|-$/g, '');
  if (joined.length <= max) return joined;
  let hash = 0;
  for (const char of joined) hash = (hash * 31 + char.charCodeAt(0)) >>> 0;
  const suffix = hash.toString(36).slice(0, 6);
  return `${joined.slice(0, max - suffix.length - 1).replace(/-$/, '')}-${suffix}`;
}

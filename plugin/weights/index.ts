/**
 * The weights step of a deploy: sync every distinct (prefix, folder) of the service's cloud functions to
 * `provider.weights.bucket` — S3 for `batch`, Cloud Storage for `cloudrun` and `gke` — and say, per
 * prefix, which version is current and where a mount reads it.
 *
 * Cloud Run and GKE mount the bucket read-only (Cloud Storage FUSE) and read files by path, so on Cloud
 * Storage each version is also laid out by path at `<prefix>/versions/<version>/` (server-side copies,
 * nothing uploaded twice); a deploy points the mount there (`mountDir`), so a new revision switches
 * versions as a whole and running revisions keep theirs. Batch fetches the pointer's current version
 * (runtime-shim/weights-fetch.ts) and needs no copies. `local` reads `weights.source` in place.
 */
import fs from 'node:fs';
import path from 'node:path';
import { ConfigError } from '../errors';
import type { ServiceConfig } from '../config';
import type { FunctionSpec } from '../spec';
import type { ProviderIO } from '../../providers/types';
import { getText, objectUrl, type ObjectStore } from '../../providers/storage/object-store';
import { parsePointer, weightsKeys } from '../../providers/storage/weights-layout';
import { SYNC_DEFAULTS, syncWeights, type SyncWeightsResult } from './sync';

export type StoreKind = 's3' | 'gcs';

/** One prefix to sync (or, without `source`, to look up) in one store. */
export interface WeightsSyncPlan {
  readonly prefix: string;
  readonly store: StoreKind;
  readonly bucket: string;
  /** Absolute folder; undefined when the weights are put in the bucket by other means. */
  readonly source?: string;
  /** Lay the version out by path for mounts (Cloud Storage). */
  readonly materialize: boolean;
  /** Functions reading the prefix, for messages. */
  readonly functions: readonly string[];
}

export interface SyncedWeights {
  readonly prefix: string;
  /** The current version, or undefined for a prefix with no synced versions (weights put there by hand). */
  readonly version?: string;
  /** What a read-only mount of the bucket reads (`only-dir`): `<prefix>/versions/<version>`, or `<prefix>` without a version. */
  readonly mountDir: string;
  /** The sync's figures per store, for prefixes synced from a folder. */
  readonly results: Partial<Record<StoreKind, SyncWeightsResult>>;
}

const STORE_OF: Record<Exclude<FunctionSpec['target'], 'local'>, StoreKind> = { batch: 's3', cloudrun: 'gcs', gke: 'gcs' };

/** Which (store, prefix) pairs the service needs, checked: a bucket is set and each prefix has one folder. */
export function planWeightsSync(config: ServiceConfig, specs: readonly FunctionSpec[]): WeightsSyncPlan[] {
  const cloud = specs.filter((s) => s.weights && s.target !== 'local');
  if (cloud.length === 0) return [];
  const bucket = config.provider.weights?.bucket;
  if (!bucket) {
    throw new ConfigError('provider.weights.bucket', `is required: ${cloud.map((s) => `${s.name} (weights.prefix "${s.weights!.prefix}")`).join(', ')} read weights from it`);
  }
  const sources = new Map<string, { source: string; fn: string }>();
  for (const spec of cloud) {
    const { prefix, source } = spec.weights!;
    if (!source) continue;
    const abs = path.resolve(config.serviceDir, source);
    const seen = sources.get(prefix);
    if (seen && seen.source !== abs) {
      throw new ConfigError(
        `functions.${spec.name}.weights.source`,
        `prefix "${prefix}" would be synced from two folders: ${path.relative(config.serviceDir, seen.source) || '.'} (function ${seen.fn}) and ${source}; give each folder its own prefix`,
      );
    }
    if (!fs.statSync(abs, { throwIfNoEntry: false })?.isDirectory()) {
      throw new ConfigError(`functions.${spec.name}.weights.source`, `${source} is not a folder (resolved to ${abs})`);
    }
    sources.set(prefix, { source: abs, fn: spec.name });
  }
  const plans = new Map<string, WeightsSyncPlan>();
  for (const spec of cloud) {
    const store = STORE_OF[spec.target as keyof typeof STORE_OF];
    const prefix = spec.weights!.prefix;
    const key = `${store}:${prefix}`;
    const plan = plans.get(key);
    plans.set(key, {
      prefix,
      store,
      bucket,
      source: sources.get(prefix)?.source,
      materialize: store === 'gcs',
      functions: [...(plan?.functions ?? []), spec.name],
    });
  }
  return [...plans.values()];
}

export type OpenStore = (kind: StoreKind, bucket: string) => Promise<ObjectStore>;

/** The cloud SDKs load only for the stores a service uses. */
export function defaultOpenStore(config: ServiceConfig): OpenStore {
  return async (kind, bucket) =>
    kind === 's3'
      ? new (await import('../../providers/storage/s3')).S3Store({ bucket, region: config.provider.aws?.region })
      : new (await import('../../providers/storage/gcs')).GcsStore({ bucket, projectId: config.provider.gcp?.project });
}

/** Syncs the service's weights; returns, per prefix, the current version and where mounts read it. */
export async function syncServiceWeights(
  config: ServiceConfig,
  specs: readonly FunctionSpec[],
  io: ProviderIO,
  options: { openStore?: OpenStore; concurrency?: number } = {},
): Promise<Record<string, SyncedWeights>> {
  const open = options.openStore ?? defaultOpenStore(config);
  const synced: Record<string, { version?: string; results: Partial<Record<StoreKind, SyncWeightsResult>> }> = {};
  for (const plan of planWeightsSync(config, specs)) {
    const store = await open(plan.store, plan.bucket);
    const entry = (synced[plan.prefix] ??= { results: {} });
    if (plan.source) {
      const result = await syncWeights({
        store,
        prefix: plan.prefix,
        source: plan.source,
        keep: config.provider.weights?.keep ?? SYNC_DEFAULTS.keep,
        concurrency: options.concurrency,
        materialize: plan.materialize,
        stateDir: path.join(config.serviceDir, '.serverless-gpu'),
        io,
      });
      entry.version = result.version;
      entry.results[plan.store] = result;
      const where = objectUrl(store, weightsKeys(plan.prefix).base);
      const moved = result.uploadedFiles > 0 ? `uploaded ${result.uploadedFiles} file(s), ${(result.uploadedBytes / 1e6).toFixed(1)} MB` : 'nothing to upload';
      io.notice(
        `weights ${plan.prefix} → ${where}: version ${result.version}${result.previous === result.version ? ' (unchanged)' : ''}; ${moved}, ${result.skippedFiles} unchanged, ${result.seconds.toFixed(1)} s`,
      );
    } else {
      const keys = weightsKeys(plan.prefix);
      const text = await getText(store, keys.current);
      if (text !== undefined) entry.version = parsePointer(text, objectUrl(store, keys.current)).version;
      io.verbose(`weights ${plan.prefix}: no weights.source; ${entry.version ? `version ${entry.version} is current` : `read as put in ${objectUrl(store, keys.base)}/`}`);
    }
  }
  return Object.fromEntries(
    Object.entries(synced).map(([prefix, entry]) => [
      prefix,
      { prefix, version: entry.version, mountDir: entry.version ? weightsKeys(prefix).mountDir(entry.version) : weightsKeys(prefix).base, results: entry.results },
    ]),
  );
}

/**
 * Keeps the `keep` most recent versions of a weights prefix (the pointer's history, current first) and
 * deletes the rest: their manifests, their by-path copies, and every blob no remaining version names.
 *
 * Another sync of the same prefix may be running elsewhere (two CI jobs): its blobs and manifest exist
 * before its pointer switch names them. So objects younger than `graceMs` that no remaining version
 * names are left for a later sync to prune.
 */
import type { ProviderIO } from '../../providers/types';
import { getText, objectUrl, type ObjectStore, type StoredObject } from '../../providers/storage/object-store';
import { isVersion, parseManifest, type WeightsManifest, type WeightsPointer, type weightsKeys } from '../../providers/storage/weights-layout';

export interface PruneResult {
  readonly deletedVersions: readonly string[];
  readonly deletedBlobs: number;
  readonly deletedCopies: number;
}

export interface PruneOptions {
  readonly store: ObjectStore;
  readonly keys: ReturnType<typeof weightsKeys>;
  readonly pointer: WeightsPointer;
  /** The current version's manifest (in memory: not read back). */
  readonly current: WeightsManifest;
  readonly keep: number;
  /** The blobs as the sync left them (its listing plus its uploads); listed afresh when not given. */
  readonly blobs?: readonly StoredObject[];
  readonly graceMs: number;
  readonly io?: ProviderIO;
}

const NOTHING: PruneResult = { deletedVersions: [], deletedBlobs: 0, deletedCopies: 0 };

export async function pruneVersions(options: PruneOptions): Promise<PruneResult> {
  const { store, keys, pointer, io } = options;
  const now = Date.now();
  const young = (o: StoredObject): boolean => o.modified !== undefined && now - o.modified.getTime() < options.graceMs;
  const kept = new Set(pointer.history.slice(0, Math.max(1, options.keep)));
  kept.add(pointer.version);

  const remaining = new Set<string>();
  const doomed: { version: string; key: string }[] = [];
  for (const object of await store.list(keys.manifests)) {
    const version = object.key.slice(keys.manifests.length).replace(/\.json$/, '');
    if (!isVersion(version)) continue;
    if (kept.has(version) || (!pointer.history.includes(version) && young(object))) remaining.add(version);
    else doomed.push({ version, key: object.key });
  }
  remaining.add(pointer.version);

  const referenced = new Set(options.current.version === pointer.version ? options.current.files.map((f) => f.sha256) : []);
  for (const version of remaining) {
    if (version === options.current.version && version === pointer.version) continue;
    const url = objectUrl(store, keys.manifest(version));
    try {
      const text = await getText(store, keys.manifest(version));
      if (text === undefined) continue;
      for (const file of parseManifest(text, url).files) referenced.add(file.sha256);
    } catch (error) {
      io?.warning(`weights ${keys.base}: not pruning blobs, ${url} could not be read: ${(error as Error).message}`);
      return NOTHING;
    }
  }

  if (doomed.length > 0) await store.delete(doomed.map((d) => d.key));

  const copies = (await store.list(keys.materialized)).filter((o) => {
    const version = o.key.slice(keys.materialized.length).split('/')[0];
    return isVersion(version) && !remaining.has(version);
  });
  if (copies.length > 0) await store.delete(copies.map((o) => o.key));

  const blobs = (options.blobs ?? (await store.list(keys.blobs))).filter((o) => !referenced.has(o.key.slice(keys.blobs.length)) && !young(o));
  if (blobs.length > 0) await store.delete(blobs.map((o) => o.key));

  const result: PruneResult = { deletedVersions: doomed.map((d) => d.version), deletedBlobs: blobs.length, deletedCopies: copies.length };
  if (doomed.length > 0 || blobs.length > 0 || copies.length > 0) {
    io?.verbose(
      `weights ${keys.base}: pruned ${doomed.length} old version(s)${doomed.length ? ` (${result.deletedVersions.join(', ')})` : ''}, ${blobs.length} unshared blob(s), ${copies.length} copied file(s)`,
    );
  }
  return result;
}

/**
 * Syncs a local weights folder to `<prefix>/` of a bucket (layout: providers/storage/weights-layout.ts).
 *
 *   1. hash the folder (only files changed since the last sync are read: local-files.ts);
 *   2. list the blobs once and upload only the missing ones, `concurrency` at a time, with a progress bar;
 *   3. write the version's manifest, then (for mounted targets) copy its files into place server-side;
 *   4. LAST, switch the pointer `<prefix>/.sgpu/current` to the version, in one PUT;
 *   5. prune: keep the `keep` most recent versions, delete older manifests, copies and unshared blobs.
 *
 * A sync cut off anywhere before step 4 leaves the previous version current and whole; the blobs it did
 * upload are reused by the next sync.
 */
import fs from 'node:fs';
import path from 'node:path';
import { BuildError } from '../errors';
import type { ProviderIO } from '../../providers/types';
import { getText, mapLimit, objectUrl, putText, type ObjectStore, type StoredObject } from '../../providers/storage/object-store';
import { HISTORY_LENGTH, parsePointer, versionOf, weightsKeys, type WeightsManifest, type WeightsPointer } from '../../providers/storage/weights-layout';
import { hashFiles, walkFolder, type HashedFile } from './local-files';
import { pruneVersions, type PruneResult } from './prune';

export interface SyncWeightsOptions {
  readonly store: ObjectStore;
  /** Where the weights live in the bucket, e.g. `classifier` (from `weights.prefix`). */
  readonly prefix: string;
  /** The local folder (absolute). */
  readonly source: string;
  /** Versions to keep, the current one included (default 3). */
  readonly keep?: number;
  /** Uploads (and copies) in flight at once (default 8). */
  readonly concurrency?: number;
  /** Also lay the version's files out by path under `<prefix>/versions/<version>/`, for targets that mount the bucket. */
  readonly materialize?: boolean;
  /** Folder for the local hash cache (e.g. `<service>/.serverless-gpu`); no cache when unset. */
  readonly stateDir?: string;
  /** Objects younger than this that no kept version names may belong to a sync running elsewhere: left alone (default 1 h). */
  readonly pruneGraceMs?: number;
  readonly io?: ProviderIO;
}

export interface SyncWeightsResult {
  readonly version: string;
  /** The version before this sync, when there was one. */
  readonly previous?: string;
  readonly files: number;
  readonly bytes: number;
  /** Blobs uploaded (files of the same content go up once). */
  readonly uploadedFiles: number;
  readonly uploadedBytes: number;
  /** Files not uploaded: the store already had their content (or another file of this sync sent it). */
  readonly skippedFiles: number;
  /** Files read to hash them (the rest were answered by the local cache). */
  readonly hashedFiles: number;
  readonly hashedBytes: number;
  /** Server-side copies made to lay the version out by path. */
  readonly copiedFiles: number;
  readonly pruned: PruneResult;
  readonly seconds: number;
}

export const SYNC_DEFAULTS = { keep: 3, concurrency: 8, pruneGraceMs: 60 * 60 * 1000, attempts: 3 } as const;

const MB = 1e6;
const mb = (bytes: number): string => `${(bytes / MB).toFixed(bytes < 10 * MB ? 2 : 1)} MB`;

/** A progress line updated at most every 200 ms. */
function progressLine(io: ProviderIO | undefined, name: string, first: string): { update(message: string, force?: boolean): void; remove(): void } {
  const line = io?.progress(name, first);
  let last = 0;
  return {
    update: (message, force = false) => {
      if (!line || (!force && Date.now() - last < 200)) return;
      last = Date.now();
      line.update(message);
    },
    remove: () => line?.remove(),
  };
}

async function withRetries<T>(attempts: number, what: () => Promise<T>, onRetry: (error: unknown) => void): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await what();
    } catch (error) {
      if (attempt >= attempts) throw error;
      onRetry(error);
      await new Promise((resolve) => setTimeout(resolve, 250 * 2 ** attempt));
    }
  }
}

/** Uploads the blobs the store lacks; returns how many files and bytes went up. */
async function uploadBlobs(
  options: SyncWeightsOptions,
  files: readonly HashedFile[],
  keys: ReturnType<typeof weightsKeys>,
): Promise<{ uploadedFiles: number; uploadedBytes: number; blobs: StoredObject[] }> {
  const { store, io } = options;
  const listed = await store.list(keys.blobs);
  const stored = new Map(listed.map((o) => [o.key, o]));
  const missing = new Map<string, HashedFile>();
  for (const file of files) {
    const have = stored.get(keys.blob(file.sha256));
    const intact = have && have.size === file.size && (have.sha256 === undefined || have.sha256 === file.sha256);
    if (!intact && !missing.has(file.sha256)) missing.set(file.sha256, file);
  }
  const todo = [...missing.values()];
  const total = todo.reduce((sum, f) => sum + f.size, 0);
  // What the store holds once the uploads are done, so pruning need not list the blobs again.
  const blobs = [
    ...listed.filter((o) => !missing.has(o.key.slice(keys.blobs.length))),
    ...todo.map((f): StoredObject => ({ key: keys.blob(f.sha256), size: f.size, sha256: f.sha256, modified: new Date() })),
  ];
  if (todo.length === 0) return { uploadedFiles: 0, uploadedBytes: 0, blobs };
  let sent = 0;
  let done = 0;
  const what = `weights ${options.prefix}`;
  const bar = progressLine(io, `gpu-weights-${options.prefix}`, `uploading ${what}: 0/${todo.length} files, ${mb(0)}/${mb(total)}`);
  const show = (force = false): void => bar.update(`uploading ${what}: ${done}/${todo.length} files, ${mb(sent)}/${mb(total)}`, force);
  try {
    await mapLimit(todo, options.concurrency ?? SYNC_DEFAULTS.concurrency, async (file) => {
      await withRetries(
        SYNC_DEFAULTS.attempts,
        async () => {
          let attemptBytes = 0;
          try {
            await store.put(keys.blob(file.sha256), { file: file.abs, size: file.size }, {
              sha256: file.sha256,
              onBytes: (n) => {
                attemptBytes += n;
                sent += n;
                show();
              },
            });
          } catch (error) {
            sent -= attemptBytes;
            throw error;
          }
          sent += file.size - attemptBytes;
        },
        (error) => io?.verbose(`${what}: retrying ${file.path}: ${(error as Error).message}`),
      );
      const now = await fs.promises.stat(file.abs);
      if (now.size !== file.size || now.mtimeMs !== file.mtimeMs || now.ctimeMs !== file.ctimeMs) {
        await store.delete([keys.blob(file.sha256)]);
        throw new BuildError('WEIGHTS_CHANGED', `${path.join(options.source, file.path)} changed while it was being uploaded; sync again`);
      }
      done += 1;
      show();
    });
    show(true);
  } finally {
    bar.remove();
  }
  return { uploadedFiles: todo.length, uploadedBytes: total, blobs };
}

/** Copies the version's blobs to `<prefix>/versions/<version>/<path>` where not there yet. */
async function materialize(options: SyncWeightsOptions, manifest: WeightsManifest, keys: ReturnType<typeof weightsKeys>): Promise<number> {
  const dir = `${keys.mountDir(manifest.version)}/`;
  const present = new Map((await options.store.list(dir)).map((o) => [o.key, o.size]));
  const todo = manifest.files.filter((f) => present.get(keys.materializedFile(manifest.version, f.path)) !== f.size);
  if (todo.length === 0) return 0;
  const bar = progressLine(options.io, `gpu-weights-${options.prefix}-copy`, `laying out weights ${options.prefix}: 0/${todo.length} files`);
  let done = 0;
  try {
    await mapLimit(todo, options.concurrency ?? SYNC_DEFAULTS.concurrency, async (file) => {
      await withRetries(SYNC_DEFAULTS.attempts, () => options.store.copy(keys.blob(file.sha256), keys.materializedFile(manifest.version, file.path)), () => undefined);
      bar.update(`laying out weights ${options.prefix}: ${++done}/${todo.length} files`);
    });
  } finally {
    bar.remove();
  }
  return todo.length;
}

const safeName = (prefix: string): string => prefix.replace(/[^A-Za-z0-9._-]+/g, '_');

export async function syncWeights(options: SyncWeightsOptions): Promise<SyncWeightsResult> {
  const started = Date.now();
  const { store, io } = options;
  const keep = Math.max(1, options.keep ?? SYNC_DEFAULTS.keep);
  const keys = weightsKeys(options.prefix);
  const source = path.resolve(options.source);

  const local = walkFolder(source);
  if (local.length === 0) throw new BuildError('WEIGHTS_SOURCE', `weights source ${source} has no files`);
  const hashBar = progressLine(io, `gpu-weights-${options.prefix}-hash`, `hashing weights ${options.prefix}: 0/${local.length} files`);
  const hashed = await hashFiles(source, local, {
    cacheFile: options.stateDir ? path.join(options.stateDir, 'weights-cache', `${safeName(keys.base)}.json`) : undefined,
    concurrency: options.concurrency ?? SYNC_DEFAULTS.concurrency,
    onFile: (done) => hashBar.update(`hashing weights ${options.prefix}: ${done}/${local.length} files`),
  }).finally(() => hashBar.remove());
  const files = hashed.files;
  const version = versionOf(files);
  const bytes = files.reduce((sum, f) => sum + f.size, 0);

  const pointerText = await getText(store, keys.current);
  const previous: WeightsPointer | undefined = pointerText === undefined ? undefined : parsePointer(pointerText, objectUrl(store, keys.current));

  const uploaded = await uploadBlobs(options, files, keys);

  const manifest: WeightsManifest = {
    v: 1,
    version,
    prefix: keys.base,
    created: new Date().toISOString(),
    bytes,
    files: files.map((f) => ({ path: f.path, sha256: f.sha256, size: f.size })),
  };
  const manifests = await store.list(keys.manifests);
  if (!manifests.some((o) => o.key === keys.manifest(version))) {
    await putText(store, keys.manifest(version), JSON.stringify(manifest));
  }
  const copiedFiles = options.materialize ? await materialize(options, manifest, keys) : 0;

  let pointer = previous;
  if (previous?.version !== version) {
    pointer = {
      v: 1,
      version,
      history: [version, ...(previous?.history ?? []).filter((v) => v !== version)].slice(0, HISTORY_LENGTH),
      updated: new Date().toISOString(),
    };
    await putText(store, keys.current, JSON.stringify(pointer));
  }

  const pruned = await pruneVersions({
    store,
    keys,
    pointer: pointer!,
    current: manifest,
    keep,
    blobs: uploaded.blobs,
    graceMs: options.pruneGraceMs ?? SYNC_DEFAULTS.pruneGraceMs,
    io,
  });

  const seconds = (Date.now() - started) / 1000;
  return {
    version,
    previous: previous?.version,
    files: files.length,
    bytes,
    uploadedFiles: uploaded.uploadedFiles,
    uploadedBytes: uploaded.uploadedBytes,
    skippedFiles: files.length - uploaded.uploadedFiles,
    hashedFiles: hashed.hashedFiles,
    hashedBytes: hashed.hashedBytes,
    copiedFiles,
    pruned,
    seconds,
  };
}

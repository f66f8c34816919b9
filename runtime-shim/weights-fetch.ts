/**
 * Fetches a synced weights version (layout: providers/storage/weights-layout.ts) to local disk at
 * container start, for targets that cannot mount the bucket (Batch) and for local runs.
 *
 * Files already present with the right SHA-256 are kept; the others are downloaded with parallel ranged
 * GETs (`rangeSize` each, `concurrency` in flight across all files), written to a temporary file, checked
 * against the manifest's SHA-256 and renamed into place, so a reader never sees a partial or corrupt
 * file. A marker `.sgpu-version` written last lets a warm restart of the same version skip everything
 * but a stat of each file. No cloud SDK is loaded unless `fetchWeightsFromEnv` needs one.
 */
import fs from 'node:fs';
import path from 'node:path';
import { sha256File } from '../providers/storage/hash';
import { getText, mapLimit, objectUrl, type ObjectStore } from '../providers/storage/object-store';
import { isSafeRelativePath, parseManifest, parsePointer, weightsKeys, type WeightsFile } from '../providers/storage/weights-layout';

export interface FetchWeightsOptions {
  readonly store: ObjectStore;
  readonly prefix: string;
  /** The local folder to fill (created when missing). */
  readonly dest: string;
  /** A version to fetch instead of the pointer's current one. */
  readonly version?: string;
  /** Ranged GETs in flight at once, across all files (default 8). */
  readonly concurrency?: number;
  /** Bytes per ranged GET (default 8 MiB); smaller files take one GET. */
  readonly rangeSize?: number;
  readonly log?: (message: string) => void;
}

export interface FetchWeightsResult {
  readonly version: string;
  /** Files in the version. */
  readonly files: number;
  readonly bytes: number;
  /** Files downloaded (the rest were already present and verified). */
  readonly fetchedFiles: number;
  readonly bytesFetched: number;
  readonly skipped: number;
  /** True when the marker said this version was already here (nothing hashed or fetched). */
  readonly warm: boolean;
  readonly seconds: number;
}

/** A downloaded file whose bytes do not hash to what the manifest says: the object in the store is corrupt. */
export class WeightsIntegrityError extends Error {
  override readonly name = 'WeightsIntegrityError';
  constructor(
    readonly file: string,
    readonly url: string,
    readonly expected: string,
    readonly actual: string,
  ) {
    super(`weights file ${file} failed verification: ${url} should have sha256 ${expected} but has ${actual}; the object in the store is corrupt (sync the weights again)`);
  }
}

export const MARKER_FILE = '.sgpu-version';
const MiB = 1024 * 1024;

interface Marker {
  readonly version: string;
  /** [path, size] of each file the version put here. */
  readonly files: readonly [string, number][];
}

function readMarker(dest: string): Marker | undefined {
  try {
    const marker = JSON.parse(fs.readFileSync(path.join(dest, MARKER_FILE), 'utf8')) as Marker;
    return typeof marker?.version === 'string' && Array.isArray(marker.files) ? marker : undefined;
  } catch {
    return undefined;
  }
}

async function sizeOf(file: string): Promise<number | undefined> {
  return (await fs.promises.stat(file).catch(() => undefined))?.size;
}

interface Range {
  readonly file: WeightsFile;
  readonly start: number;
  readonly end: number;
}

/** Downloads `files` with ranged GETs, verifying and renaming each file when its last range lands. */
async function download(options: FetchWeightsOptions, files: readonly WeightsFile[]): Promise<number> {
  const { store, dest } = options;
  const keys = weightsKeys(options.prefix);
  const rangeSize = options.rangeSize ?? 8 * MiB;
  const tmpOf = (file: WeightsFile): string => path.join(dest, `${file.path}.sgpu-partial-${process.pid}`);
  const pending = new Map<string, { fd: Promise<fs.promises.FileHandle>; left: number }>();
  const ranges: Range[] = files.flatMap((file) =>
    Array.from({ length: Math.max(1, Math.ceil(file.size / rangeSize)) }, (_, i) => ({ file, start: i * rangeSize, end: Math.min(file.size, (i + 1) * rangeSize) - 1 })),
  );
  let fetched = 0;

  const finish = async (file: WeightsFile): Promise<void> => {
    const tmp = tmpOf(file);
    const actual = await sha256File(tmp);
    if (actual !== file.sha256) {
      await fs.promises.rm(tmp, { force: true });
      throw new WeightsIntegrityError(file.path, objectUrl(store, keys.blob(file.sha256)), file.sha256, actual);
    }
    await fs.promises.rename(tmp, path.join(dest, file.path));
  };

  try {
    await mapLimit(ranges, options.concurrency ?? 8, async (range) => {
      const { file } = range;
      let open = pending.get(file.path);
      if (!open) {
        // Registered before any await: the file's other ranges, on other workers, share this handle.
        const fd = fs.promises.mkdir(path.dirname(path.join(dest, file.path)), { recursive: true }).then(() => fs.promises.open(tmpOf(file), 'w'));
        open = { fd, left: Math.max(1, Math.ceil(file.size / rangeSize)) };
        pending.set(file.path, open);
      }
      const handle = await open.fd;
      if (file.size > 0) {
        const whole = range.start === 0 && range.end === file.size - 1;
        const data = await store.get(keys.blob(file.sha256), whole ? undefined : { start: range.start, end: range.end });
        if (data.length !== range.end - range.start + 1) {
          throw new Error(`weights file ${file.path}: ${objectUrl(store, keys.blob(file.sha256))} answered ${data.length} bytes for bytes ${range.start}-${range.end} (the object is ${data.length < file.size ? 'truncated' : 'the wrong size'})`);
        }
        await handle.write(data, 0, data.length, range.start);
        fetched += data.length;
      }
      if (--open.left === 0) {
        pending.delete(file.path);
        await handle.close();
        await finish(file);
      }
    });
  } finally {
    for (const [filePath, open] of pending) {
      await (await open.fd.catch(() => undefined))?.close().catch(() => undefined);
      await fs.promises.rm(path.join(dest, `${filePath}.sgpu-partial-${process.pid}`), { force: true });
    }
  }
  return fetched;
}

export async function fetchWeights(options: FetchWeightsOptions): Promise<FetchWeightsResult> {
  const started = Date.now();
  const { store, dest } = options;
  const keys = weightsKeys(options.prefix);
  const seconds = (): number => (Date.now() - started) / 1000;

  let version = options.version;
  if (!version) {
    const text = await getText(store, keys.current);
    if (text === undefined) throw new Error(`no weights synced under ${objectUrl(store, keys.base)}/ (${objectUrl(store, keys.current)} is missing): deploy with weights.source set`);
    version = parsePointer(text, objectUrl(store, keys.current)).version;
  }

  const marker = readMarker(dest);
  if (marker?.version === version) {
    const sizes = await Promise.all(marker.files.map(([file]) => sizeOf(path.join(dest, file))));
    if (marker.files.every(([, size], i) => sizes[i] === size)) {
      const bytes = marker.files.reduce((sum, [, size]) => sum + size, 0);
      return { version, files: marker.files.length, bytes, fetchedFiles: 0, bytesFetched: 0, skipped: marker.files.length, warm: true, seconds: seconds() };
    }
  }

  const manifestUrl = objectUrl(store, keys.manifest(version));
  const text = await getText(store, keys.manifest(version));
  if (text === undefined) throw new Error(`weights version ${version} of ${objectUrl(store, keys.base)}/ is missing its manifest ${manifestUrl}`);
  const manifest = parseManifest(text, manifestUrl);

  await fs.promises.mkdir(dest, { recursive: true });
  await fs.promises.rm(path.join(dest, MARKER_FILE), { force: true });
  // Files an earlier version put here that this one does not have.
  const wanted = new Set(manifest.files.map((f) => f.path));
  for (const [old] of marker?.files ?? []) {
    if (!wanted.has(old) && isSafeRelativePath(old)) await fs.promises.rm(path.join(dest, old), { force: true });
  }

  const present = await mapLimit(manifest.files, options.concurrency ?? 8, async (file) => {
    const local = path.join(dest, file.path);
    return (await sizeOf(local)) === file.size && (await sha256File(local)) === file.sha256;
  });
  const todo = manifest.files.filter((_, i) => !present[i]);
  if (todo.length > 0) options.log?.(`fetching weights ${keys.base}@${version}: ${todo.length} file(s), ${todo.reduce((s, f) => s + f.size, 0)} bytes`);
  const bytesFetched = await download(options, todo);

  const next: Marker = { version, files: manifest.files.map((f) => [f.path, f.size]) };
  const tmp = path.join(dest, `${MARKER_FILE}.${process.pid}`);
  await fs.promises.writeFile(tmp, JSON.stringify(next));
  await fs.promises.rename(tmp, path.join(dest, MARKER_FILE));

  return {
    version,
    files: manifest.files.length,
    bytes: manifest.bytes,
    fetchedFiles: todo.length,
    bytesFetched,
    skipped: manifest.files.length - todo.length,
    warm: false,
    seconds: seconds(),
  };
}

/**
 * The container's start-up fetch, driven by the job's environment (see providers/batch/function.ts):
 * `SGPU_WEIGHTS_BUCKET`, `SGPU_WEIGHTS_PREFIX`, `SGPU_WEIGHTS_PATH`, and optionally
 * `SGPU_WEIGHTS_VERSION` (pin), `SGPU_WEIGHTS_STORE` (`s3`, the default, or `gcs`) and
 * `SGPU_WEIGHTS_CONCURRENCY`. Does nothing (undefined) without the first three. Logs the version, files
 * and bytes fetched and the time taken.
 */
export async function fetchWeightsFromEnv(env: NodeJS.ProcessEnv = process.env, log: (message: string) => void = () => undefined): Promise<FetchWeightsResult | undefined> {
  const { SGPU_WEIGHTS_BUCKET: bucket, SGPU_WEIGHTS_PREFIX: prefix, SGPU_WEIGHTS_PATH: dest } = env;
  if (!bucket || !prefix || !dest) return undefined;
  const store: ObjectStore =
    env.SGPU_WEIGHTS_STORE === 'gcs'
      ? new (await import('../providers/storage/gcs')).GcsStore({ bucket })
      : new (await import('../providers/storage/s3')).S3Store({ bucket });
  const result = await fetchWeights({
    store,
    prefix,
    dest,
    version: env.SGPU_WEIGHTS_VERSION || undefined,
    concurrency: Number(env.SGPU_WEIGHTS_CONCURRENCY) || undefined,
    log,
  });
  const mb = (result.bytesFetched / 1e6).toFixed(1);
  log(
    result.warm
      ? `weights ${prefix}@${result.version}: already here (${result.files} file(s)), ${result.seconds.toFixed(2)} s`
      : `weights ${prefix}@${result.version}: fetched ${result.fetchedFiles} file(s), ${mb} MB in ${result.seconds.toFixed(2)} s (${(result.bytesFetched / 1e6 / Math.max(result.seconds, 0.001)).toFixed(0)} MB/s), ${result.skipped} already present`,
  );
  return result;
}

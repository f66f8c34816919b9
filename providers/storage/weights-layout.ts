/**
 * How weights are laid out under `<prefix>/` in the bucket; the sync (plugin/weights/sync.ts) writes
 * it and the fetch (runtime-shim/weights-fetch.ts) reads it.
 *
 *   <prefix>/.sgpu/blobs/<sha256>            each distinct file content once, shared by all versions
 *   <prefix>/.sgpu/versions/<version>.json   a version's manifest: { path, sha256, size } per file
 *   <prefix>/.sgpu/current                   the pointer: { version, history } (written last)
 *   <prefix>/versions/<version>/<path>       the version's files by path (server-side copies of the
 *                                            blobs), for targets that mount the bucket read-only
 *
 * A version is named by its content (a hash over paths, hashes and sizes), so syncing the same folder
 * twice is the same version, and a version's objects never change once written. The pointer is one
 * object, written in one PUT after everything it names exists: a sync cut off before it leaves the
 * previous version current and whole.
 */
import { createHash } from 'node:crypto';

export interface WeightsFile {
  /** Relative path inside the folder, `/`-separated. */
  readonly path: string;
  readonly sha256: string;
  readonly size: number;
}

export interface WeightsManifest {
  readonly v: 1;
  readonly version: string;
  readonly prefix: string;
  /** ISO time the version was first written. */
  readonly created: string;
  readonly bytes: number;
  readonly files: readonly WeightsFile[];
}

export interface WeightsPointer {
  readonly v: 1;
  readonly version: string;
  /** Versions that were current, most recent first (`version` is the first). */
  readonly history: readonly string[];
  readonly updated: string;
}

/** Characters of the hex SHA-256 that name a version. */
const VERSION_LENGTH = 16;
/** How many past versions the pointer remembers (pruning keeps fewer). */
export const HISTORY_LENGTH = 20;

export function weightsKeys(prefix: string) {
  const base = prefix.replace(/^\/+|\/+$/g, '');
  return {
    base,
    blobs: `${base}/.sgpu/blobs/`,
    blob: (sha256: string) => `${base}/.sgpu/blobs/${sha256}`,
    manifests: `${base}/.sgpu/versions/`,
    manifest: (version: string) => `${base}/.sgpu/versions/${version}.json`,
    current: `${base}/.sgpu/current`,
    materialized: `${base}/versions/`,
    /** The folder a mount reads (e.g. Cloud Storage FUSE `only-dir`), without a trailing slash. */
    mountDir: (version: string) => `${base}/versions/${version}`,
    materializedFile: (version: string, path: string) => `${base}/versions/${version}/${path}`,
  };
}

/** The version name of a set of files: order-independent, changes with any path, content or size. */
export function versionOf(files: readonly WeightsFile[]): string {
  const hash = createHash('sha256');
  for (const file of [...files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))) {
    hash.update(`${file.path}\0${file.sha256}\0${file.size}\n`);
  }
  return hash.digest('hex').slice(0, VERSION_LENGTH);
}

const SHA256 = /^[0-9a-f]{64}$/;
const VERSION = /^[0-9a-f]{16}$/;

/** A path that stays inside the folder it is joined to: relative, no `.`/`..`/empty segments, no backslash. */
export function isSafeRelativePath(path: string): boolean {
  return path.length > 0 && !path.startsWith('/') && !path.includes('\\') && !path.includes('\0') && path.split('/').every((s) => s !== '' && s !== '.' && s !== '..');
}

function invalid(url: string, why: string): Error {
  return new Error(`${url} is not a valid serverless-gpu weights object: ${why}`);
}

export function parseManifest(text: string, url: string): WeightsManifest {
  let manifest: WeightsManifest;
  try {
    manifest = JSON.parse(text) as WeightsManifest;
  } catch (error) {
    throw invalid(url, (error as Error).message);
  }
  if (manifest?.v !== 1 || !VERSION.test(manifest.version ?? '') || !Array.isArray(manifest.files)) throw invalid(url, 'expected { v: 1, version, files }');
  for (const file of manifest.files) {
    if (!isSafeRelativePath(file?.path ?? '')) throw invalid(url, `unsafe path ${JSON.stringify(file?.path)}`);
    if (!SHA256.test(file.sha256 ?? '') || !Number.isSafeInteger(file.size) || file.size < 0) throw invalid(url, `bad entry for ${file.path}`);
  }
  if (versionOf(manifest.files) !== manifest.version) throw invalid(url, `its files do not hash to version ${manifest.version}`);
  return manifest;
}

export function parsePointer(text: string, url: string): WeightsPointer {
  let pointer: WeightsPointer;
  try {
    pointer = JSON.parse(text) as WeightsPointer;
  } catch (error) {
    throw invalid(url, (error as Error).message);
  }
  if (pointer?.v !== 1 || !VERSION.test(pointer.version ?? '') || !Array.isArray(pointer.history)) throw invalid(url, 'expected { v: 1, version, history }');
  return pointer;
}

export const isVersion = (name: string): boolean => VERSION.test(name);

/**
 * The local side of a weights sync: the folder's files in path order, and their SHA-256, read only for
 * files that changed since the last sync. A cache beside the service (`.serverless-gpu/weights-cache/`)
 * remembers (size, mtime, ctime) → SHA-256 per path, as git's index does, so an unchanged multi-GB folder
 * is stat'ed, not read. A file modified within two seconds of being hashed is not cached (a write in the
 * same clock tick would leave its times unchanged), so it is hashed again next time.
 */
import fs from 'node:fs';
import path from 'node:path';
import { BuildError } from '../errors';
import { sha256File } from '../../providers/storage/hash';
import { mapLimit } from '../../providers/storage/object-store';

export interface LocalFile {
  /** Relative to the folder, `/`-separated. */
  readonly path: string;
  readonly abs: string;
  readonly size: number;
  readonly mtimeMs: number;
  /** Changes on every write, and cannot be set back: catches tools that restore mtime (cp -p, rsync -t, tar). */
  readonly ctimeMs: number;
}

export interface HashedFile extends LocalFile {
  readonly sha256: string;
}

interface CacheFile {
  readonly v: 2;
  readonly source: string;
  /** path → [size, mtimeMs, ctimeMs, sha256] */
  readonly files: Record<string, [number, number, number, string]>;
}

const RACY_MS = 2000;

const byPath = (a: { path: string }, b: { path: string }): number => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0);

/** Every regular file under `root` (following symlinks, each real folder once), sorted by path. */
export function walkFolder(root: string): LocalFile[] {
  if (!fs.statSync(root, { throwIfNoEntry: false })?.isDirectory()) throw new BuildError('WEIGHTS_SOURCE', `weights source ${root} is not a folder`);
  // Synchronous on purpose: tens of thousands of stat calls run several times faster than through the thread pool.
  const files: LocalFile[] = [];
  const seen = new Set<string>();
  const visit = (dir: string, rel: string): void => {
    const real = fs.realpathSync(dir);
    if (seen.has(real)) return;
    seen.add(real);
    for (const name of fs.readdirSync(dir).sort()) {
      const abs = path.join(dir, name);
      const relPath = rel ? `${rel}/${name}` : name;
      const entry = fs.statSync(abs, { throwIfNoEntry: false });
      if (entry?.isDirectory()) visit(abs, relPath);
      else if (entry?.isFile()) files.push({ path: relPath, abs, size: entry.size, mtimeMs: entry.mtimeMs, ctimeMs: entry.ctimeMs });
    }
  };
  visit(root, '');
  return files.sort(byPath);
}

function readCache(cacheFile: string | undefined, source: string): CacheFile['files'] {
  if (!cacheFile) return {};
  try {
    const cache = JSON.parse(fs.readFileSync(cacheFile, 'utf8')) as CacheFile;
    return cache.v === 2 && cache.source === source ? cache.files : {};
  } catch {
    return {};
  }
}

function writeCache(cacheFile: string, source: string, files: CacheFile['files']): void {
  fs.mkdirSync(path.dirname(cacheFile), { recursive: true });
  const tmp = `${cacheFile}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify({ v: 2, source, files } satisfies CacheFile));
  fs.renameSync(tmp, cacheFile);
}

export interface HashResult {
  readonly files: HashedFile[];
  /** Files whose content was read (not answered by the cache). */
  readonly hashedFiles: number;
  readonly hashedBytes: number;
}

/** SHA-256 of each file, from the cache when (size, mtime) match, else by reading it; updates the cache. */
export async function hashFiles(
  source: string,
  files: readonly LocalFile[],
  options: { cacheFile?: string; concurrency?: number; onFile?: (done: number) => void } = {},
): Promise<HashResult> {
  const cached = readCache(options.cacheFile, source);
  const next: CacheFile['files'] = {};
  let hashedFiles = 0;
  let hashedBytes = 0;
  let done = 0;
  const hashed = await mapLimit(files, options.concurrency ?? 8, async (file): Promise<HashedFile> => {
    const hit = cached[file.path];
    let sha256: string;
    if (hit && hit[0] === file.size && hit[1] === file.mtimeMs && hit[2] === file.ctimeMs) {
      sha256 = hit[3];
    } else {
      const started = Date.now();
      sha256 = await sha256File(file.abs);
      hashedFiles += 1;
      hashedBytes += file.size;
      if (file.mtimeMs >= started - RACY_MS) {
        options.onFile?.(++done);
        return { ...file, sha256 };
      }
    }
    next[file.path] = [file.size, file.mtimeMs, file.ctimeMs, sha256];
    options.onFile?.(++done);
    return { ...file, sha256 };
  });
  if (options.cacheFile) writeCache(options.cacheFile, source, next);
  return { files: hashed, hashedFiles, hashedBytes };
}

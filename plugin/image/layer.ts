/**
 * Reproducible image layers: the same files give the same bytes, so the same digest, so nothing to
 * upload. Entries are sorted, every parent folder is listed, mtimes are fixed, owners are root and
 * modes are 0644 (0755 for folders and executables); gzip has a fixed level and no name or time.
 */
import zlib from 'node:zlib';
import * as tar from 'tar-stream';
import { sha256 } from '../../providers/registry/client';

export interface LayerFile {
  /** Path inside the image, without a leading slash, e.g. `app/bundle.js`. */
  readonly path: string;
  readonly data: Buffer;
  readonly executable?: boolean;
}

export interface Layer {
  /** The gzipped tar: the blob that is uploaded. */
  readonly blob: Buffer;
  /** sha256 of the blob. */
  readonly digest: string;
  /** sha256 of the uncompressed tar: what the image config's rootfs.diff_ids lists. */
  readonly diffId: string;
}

/** 2000-01-01T00:00:00Z: fixed, and after the epoch so tools that treat 0 as "unset" behave. */
export const LAYER_MTIME = new Date(Date.UTC(2000, 0, 1));

function parents(file: string): string[] {
  const parts = file.split('/').slice(0, -1);
  return parts.map((_, i) => `${parts.slice(0, i + 1).join('/')}/`);
}

export async function buildLayer(files: readonly LayerFile[]): Promise<Layer> {
  for (const file of files) {
    if (file.path.startsWith('/') || file.path.split('/').includes('..')) throw new Error(`layer path "${file.path}" must be relative and inside the image`);
  }
  const dirs = [...new Set(files.flatMap((f) => parents(f.path)))];
  const entries = [
    ...dirs.map((name) => ({ name, dir: true as const })),
    ...files.map((file) => ({ name: file.path, dir: false as const, file })),
  ].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));

  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const done = new Promise<void>((resolve, reject) => {
    pack.on('data', (chunk: unknown) => chunks.push(chunk as Buffer));
    pack.on('end', resolve);
    pack.on('error', reject);
  });
  const common = { mtime: LAYER_MTIME, uid: 0, gid: 0, uname: 'root', gname: 'root' };
  for (const entry of entries) {
    if (entry.dir) {
      pack.entry({ ...common, name: entry.name, type: 'directory', mode: 0o755 });
    } else {
      pack.entry({ ...common, name: entry.name, type: 'file', mode: entry.file.executable ? 0o755 : 0o644, size: entry.file.data.length }, entry.file.data);
    }
  }
  pack.finalize();
  await done;
  const tarball = Buffer.concat(chunks);
  const blob = zlib.gzipSync(tarball, { level: 6 });
  return { blob, digest: sha256(blob), diffId: sha256(tarball) };
}

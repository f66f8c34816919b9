/**
 * Where inputs and outputs too large for a request body travel: a folder or bucket prefix named by a
 * URL — `file:///abs/dir/`, `s3://bucket/prefix/`, `gs://bucket/prefix/`. The client writes a large
 * input there and sends its URL (`inputRef`); the shim writes a large output there and answers its URL
 * (`outputRef`). The object-store clients load only for the scheme in use.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Encoded JSON larger than this goes through the payload store (Cloud Run's request limit is 32 MiB). */
export const DEFAULT_INLINE_LIMIT_BYTES = 8 * 1024 * 1024;

function parse(url: string): { scheme: 'file' | 's3' | 'gs'; bucket: string; key: string } {
  const match = /^(file|s3|gs):\/\/([^/]*)\/(.*)$/.exec(url);
  if (!match) throw new Error(`"${url}" is not a payload URL (file:///dir/..., s3://bucket/..., gs://bucket/...)`);
  return { scheme: match[1] as 'file' | 's3' | 'gs', bucket: match[2], key: match[3] };
}

/** `<base><name>`, with exactly one slash between. */
export function payloadUrl(base: string, name: string): string {
  return `${base.replace(/\/+$/, '')}/${name}`;
}

/** True when `url` lies under `base` (the shim reads refs from its own store only). */
export function isUnder(url: string, base: string): boolean {
  const root = `${base.replace(/\/+$/, '')}/`;
  return url.startsWith(root) && !url.slice(root.length).split('/').includes('..');
}

async function objectStore(scheme: 's3' | 'gs', bucket: string) {
  return scheme === 's3'
    ? new (await import('../providers/storage/s3')).S3Store({ bucket })
    : new (await import('../providers/storage/gcs')).GcsStore({ bucket });
}

export async function writePayload(url: string, text: string): Promise<void> {
  const { scheme, bucket, key } = parse(url);
  if (scheme === 'file') {
    const file = fileURLToPath(url);
    await fs.promises.mkdir(path.dirname(file), { recursive: true });
    await fs.promises.writeFile(file, text);
    return;
  }
  await (await objectStore(scheme, bucket)).put(key, Buffer.from(text));
}

export async function readPayload(url: string): Promise<string> {
  const { scheme, bucket, key } = parse(url);
  if (scheme === 'file') return fs.promises.readFile(fileURLToPath(url), 'utf8');
  return (await (await objectStore(scheme, bucket)).get(key)).toString('utf8');
}

/** Best effort: a payload left behind is only storage. */
export async function deletePayload(url: string): Promise<void> {
  try {
    const { scheme, bucket, key } = parse(url);
    if (scheme === 'file') await fs.promises.rm(fileURLToPath(url), { force: true });
    else await (await objectStore(scheme, bucket)).delete([key]);
  } catch {
    // ignore
  }
}

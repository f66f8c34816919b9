/**
 * The code image: the environment image plus two reproducible layers — the shim (shared by every
 * function and deploy) and the function's bundle with its manifest — assembled over the OCI
 * Distribution API without a daemon. Only blobs the registry lacks are uploaded — after a code-only
 * change, the function's layer and the config; after no change, nothing but the (identical) manifest.
 * Deploys pin the resulting digest.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { MEDIA, sha256, type Descriptor, type ImageManifest, type RegistryClient } from '../../providers/registry/client';
import { canonicalJson } from '../../runtime-shim/image';
import { MANIFEST_FILE } from '../../runtime-shim/manifest';
import type { FunctionSpec } from '../spec';
import { BUNDLE_FILE, SHIM_FILE } from '../bundle';
import { APP_DIR } from './containerfile';
import { LAYER_MTIME, buildLayer, type Layer } from './layer';

export const LABELS = {
  service: 'dev.serverless-gpu.service',
  function: 'dev.serverless-gpu.function',
  specHash: 'dev.serverless-gpu.spec-hash',
  environment: 'dev.serverless-gpu.environment',
} as const;

export interface CodeImage {
  /** `registry/repository@sha256:...`: what deploys use. */
  readonly reference: string;
  readonly digest: string;
  readonly tag: string;
  readonly layer: Pick<Layer, 'digest' | 'diffId'> & { readonly size: number };
}

interface ImageConfig {
  config?: {
    Env?: string[];
    Entrypoint?: string[] | null;
    Cmd?: string[] | null;
    WorkingDir?: string;
    Labels?: Record<string, string> | null;
    ExposedPorts?: Record<string, object>;
  };
  rootfs: { type: 'layers'; diff_ids: string[] };
  history?: Array<{ created?: string; created_by?: string; comment?: string; empty_layer?: boolean }>;
  [key: string]: unknown;
}

export function specHash(spec: FunctionSpec): string {
  return createHash('sha256').update(canonicalJson(spec)).digest('hex');
}

/**
 * The two layers appended to the environment, from a function's artifact folder: the runtime (the
 * shim, the same for every function and every deploy of a given serverless-gpu version, so its blob is
 * almost always in the registry already) and the function's code (its bundle and manifest: what a
 * code change changes).
 */
export const CODE_LAYERS = {
  runtime: [SHIM_FILE, `${SHIM_FILE}.map`],
  function: [BUNDLE_FILE, `${BUNDLE_FILE}.map`, MANIFEST_FILE],
} as const;

export function layerFiles(artifactDir: string, names: readonly string[]): Array<{ path: string; data: Buffer }> {
  return names
    .filter((name) => fs.existsSync(path.join(artifactDir, name)))
    .map((name) => ({ path: `${APP_DIR.slice(1)}/${name}`, data: fs.readFileSync(path.join(artifactDir, name)) }));
}

/**
 * A layer, from a cache keyed by a hash of its inputs when one is given (jib's "selector"): an unchanged
 * runtime or bundle is not tarred and gzipped again on every package.
 */
export async function cachedLayer(files: Array<{ path: string; data: Buffer }>, cacheDir: string | undefined): Promise<Layer> {
  if (!cacheDir) return buildLayer(files);
  const key = createHash('sha256');
  for (const file of [...files].sort((a, b) => (a.path < b.path ? -1 : 1))) key.update(`${file.path}\0`).update(createHash('sha256').update(file.data).digest()).update('\0');
  const base = path.join(cacheDir, key.digest('hex'));
  try {
    const meta = JSON.parse(fs.readFileSync(`${base}.json`, 'utf8')) as { digest: string; diffId: string };
    const blob = fs.readFileSync(`${base}.tar.gz`);
    if (sha256(blob) === meta.digest) return { blob, digest: meta.digest, diffId: meta.diffId };
  } catch {
    // not cached yet (or unreadable): build it
  }
  const layer = await buildLayer(files);
  fs.mkdirSync(cacheDir, { recursive: true });
  fs.writeFileSync(`${base}.tar.gz`, layer.blob);
  fs.writeFileSync(`${base}.json`, JSON.stringify({ digest: layer.digest, diffId: layer.diffId }));
  return layer;
}

function withEnv(env: readonly string[], vars: Record<string, string>): string[] {
  const kept = env.filter((entry) => !Object.prototype.hasOwnProperty.call(vars, entry.split('=')[0]));
  return [...kept, ...Object.entries(vars).map(([key, value]) => `${key}=${value}`)];
}

/** The code image's config: the environment's, with the layers, the entry point and labels added. */
export function codeImageConfig(base: ImageConfig, layers: ReadonlyArray<Pick<Layer, 'diffId'> & { readonly name?: string }>, labels: Record<string, string>): ImageConfig {
  const inner = base.config ?? {};
  const env = inner.Env ?? [];
  const port: Record<string, string> = env.some((entry) => entry.startsWith('PORT=')) ? {} : { PORT: '8080' };
  return {
    ...base,
    config: {
      ...inner,
      Env: withEnv(env, { ...port, SGPU_MANIFEST: `${APP_DIR}/${MANIFEST_FILE}`, NODE_OPTIONS: '--enable-source-maps' }),
      Entrypoint: ['node', `${APP_DIR}/${SHIM_FILE}`, `${APP_DIR}/${MANIFEST_FILE}`],
      Cmd: null,
      WorkingDir: APP_DIR,
      ExposedPorts: { ...(inner.ExposedPorts ?? {}), '8080/tcp': {} },
      Labels: { ...(inner.Labels ?? {}), ...labels },
    },
    rootfs: { type: 'layers', diff_ids: [...base.rootfs.diff_ids, ...layers.map((layer) => layer.diffId)] },
    history: [
      ...(base.history ?? []),
      ...layers.map((layer) => ({ created: LAYER_MTIME.toISOString(), created_by: `serverless-gpu: ${layer.name ?? 'function code'} layer`, comment: labels[LABELS.function] })),
    ],
  };
}

export async function pushCodeImage(request: {
  readonly client: RegistryClient;
  readonly repository: string;
  readonly environmentTag: string;
  readonly artifactDir: string;
  readonly spec: FunctionSpec;
  /** Where built layers are kept between packages; none: always built. */
  readonly cacheDir?: string;
}): Promise<CodeImage> {
  const { client, repository } = request;
  const env = await client.getManifest(repository, request.environmentTag);
  const oci = env.mediaType === MEDIA.ociManifest;
  const baseConfig = JSON.parse((await client.getBlob(repository, env.manifest.config.digest)).toString('utf8')) as ImageConfig;

  const runtime = { ...(await cachedLayer(layerFiles(request.artifactDir, CODE_LAYERS.runtime), request.cacheDir)), name: 'runtime (shim)' };
  const layer = { ...(await cachedLayer(layerFiles(request.artifactDir, CODE_LAYERS.function), request.cacheDir)), name: 'function code' };
  const labels = {
    [LABELS.service]: request.spec.service,
    [LABELS.function]: request.spec.name,
    [LABELS.specHash]: specHash(request.spec),
    [LABELS.environment]: request.environmentTag,
  };
  const config = Buffer.from(JSON.stringify(codeImageConfig(baseConfig, [runtime, layer], labels)));
  const pushedRuntime = await client.pushBlob(repository, runtime.blob);
  const pushedLayer = await client.pushBlob(repository, layer.blob);
  const pushedConfig = await client.pushBlob(repository, config);

  const layerMedia = oci ? MEDIA.ociLayerGzip : MEDIA.dockerLayerGzip;
  const appended: Descriptor[] = [pushedRuntime, pushedLayer].map((pushed) => ({ mediaType: layerMedia, digest: pushed.digest, size: pushed.size }));
  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType: oci ? MEDIA.ociManifest : MEDIA.dockerManifest,
    config: { mediaType: oci ? MEDIA.ociConfig : MEDIA.dockerConfig, digest: pushedConfig.digest, size: pushedConfig.size },
    layers: [...env.manifest.layers, ...appended],
  };
  const tag = `${request.spec.name.toLowerCase().replace(/[^a-z0-9_.-]/g, '-')}-${pushedLayer.digest.slice(7, 19)}`;
  const digest = await client.putManifest(repository, tag, Buffer.from(JSON.stringify(manifest)), manifest.mediaType!);
  return {
    reference: `${client.registry}/${repository}@${digest}`,
    digest,
    tag,
    layer: { digest: layer.digest, diffId: layer.diffId, size: layer.blob.length },
  };
}

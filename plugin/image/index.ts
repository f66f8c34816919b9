/**
 * The image stage of `sls package`: for every function whose target runs containers, make sure its
 * environment image is in the registry (building it only when its tag is missing), then push its code
 * image and record the digest the program deploys. Progress says which layer moved and which was cached.
 */
import fs from 'node:fs';
import path from 'node:path';
import { RegistryClient, RegistryError } from '../../providers/registry/client';
import type { ServiceConfig } from '../config';
import { BuildError, ConfigError } from '../errors';
import type { FunctionSpec } from '../spec';
import type { ProviderIO } from '../../providers/types';
import { pickBuilder, type Builder } from './builder';
import { pushCodeImage } from './code-image';
import { ensureEnvironmentImage, type EnvironmentSpec } from './environment';
import { pinVersions } from './lockfile';

export interface BuiltImage {
  readonly function: string;
  /** `registry/repository@sha256:...` */
  readonly reference: string;
  readonly digest: string;
  readonly environmentTag: string;
  readonly environmentBuilt: boolean;
}

export interface ImageRequest {
  readonly spec: FunctionSpec;
  readonly artifactDir: string;
  readonly externals: readonly string[];
}

export const IMAGES_FILE = 'images.json';

/** `provider.registry` → the registry host and the repository of this service's images. */
export function serviceRepository(config: ServiceConfig, spec: FunctionSpec): { registry: string; repository: string } {
  const registry = registryFor(config, spec);
  if (!registry) {
    throw new ConfigError('provider.registry', `is required: function ${spec.name} runs on ${spec.target}, which runs container images`);
  }
  const [host, ...rest] = registry.replace(/^[a-z]+:\/\//, '').replace(/\/+$/, '').split('/');
  return { registry: host, repository: [...rest, config.service.toLowerCase()].join('/') };
}

/** Batch functions' images go to `provider.aws.registry` when set (Batch pulls from ECR); others to `provider.registry`. */
export function registryFor(config: ServiceConfig, spec: Pick<FunctionSpec, 'target'>): string | undefined {
  return spec.target === 'batch' ? (config.provider.aws?.registry ?? config.provider.registry) : config.provider.registry;
}

function kb(bytes: number): string {
  return bytes < 1024 * 1024 ? `${(bytes / 1024).toFixed(1)} kB` : `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

function asBuildError(error: unknown): unknown {
  return error instanceof RegistryError ? new BuildError(`REGISTRY_${error.code}`, error.message) : error;
}

export async function buildImages(
  config: ServiceConfig,
  requests: readonly ImageRequest[],
  io: ProviderIO,
  options: { clientFor?: (registry: string) => RegistryClient; builder?: () => Builder } = {},
): Promise<Map<string, BuiltImage>> {
  const clients = new Map<string, RegistryClient>();
  const clientFor = options.clientFor ?? ((registry: string) => new RegistryClient(registry));
  const client = (registry: string): RegistryClient => {
    if (!clients.has(registry)) clients.set(registry, clientFor(registry));
    return clients.get(registry)!;
  };
  let builder: Builder | undefined;
  const getBuilder = options.builder ?? (() => (builder ??= pickBuilder(config.provider.builder)));
  const built = new Map<string, BuiltImage>();
  const progress = io.progress('gpu-images', 'checking environment images');
  try {
    for (const request of requests) {
      const { spec } = request;
      if (!spec.image) {
        throw new ConfigError(`${spec.relFile}: ${spec.exportName} (function ${spec.name}) option image`, `is required on target ${spec.target}, e.g. Image.from("node:20-slim")`);
      }
      const { registry, repository } = serviceRepository(config, spec);
      const registryClient = client(registry);
      const env: EnvironmentSpec = { steps: spec.image.steps, externals: pinVersions(config.serviceDir, request.externals) };
      progress.update(`${spec.name}: environment image`);
      const environment = await ensureEnvironmentImage({
        spec: env,
        serviceDir: config.serviceDir,
        registry,
        repository,
        client: registryClient,
        builder: getBuilder,
        onLine: (line) => {
          io.verbose(`  ${line}`);
          if (/^STEP \d+\/\d+/.test(line)) progress.update(`${spec.name}: building environment (${line.slice(0, 60)})`);
        },
      }).catch((error: unknown) => {
        throw asBuildError(error);
      });
      io.info(`${spec.name}: environment ${environment.tag} ${environment.built ? 'built and pushed' : 'cached in the registry (not rebuilt)'}`);
      progress.update(`${spec.name}: code layer`);
      const before = { ...registryClient.stats };
      const cacheDir = path.join(path.dirname(request.artifactDir), '_layers');
      const image = await pushCodeImage({ client: registryClient, repository, environmentTag: environment.tag, artifactDir: request.artifactDir, spec, cacheDir }).catch(
        (error: unknown) => {
          throw asBuildError(error);
        },
      );
      const uploaded = registryClient.stats.blobsUploaded - before.blobsUploaded;
      const skipped = registryClient.stats.blobsSkipped - before.blobsSkipped;
      io.info(
        `${spec.name}: code layer ${image.layer.digest.slice(7, 19)} (${kb(image.layer.size)}): ${uploaded} blob(s) uploaded (${kb(registryClient.stats.bytesUploaded - before.bytesUploaded)}), ${skipped} already there → ${image.reference}`,
      );
      built.set(spec.name, {
        function: spec.name,
        reference: image.reference,
        digest: image.digest,
        environmentTag: environment.tag,
        environmentBuilt: environment.built,
      });
    }
  } finally {
    progress.remove();
  }
  return built;
}

export function writeImagesFile(outDir: string, images: ReadonlyMap<string, BuiltImage>): void {
  fs.writeFileSync(path.join(outDir, IMAGES_FILE), `${JSON.stringify(Object.fromEntries(images), null, 2)}\n`);
}

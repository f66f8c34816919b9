/**
 * From the service's config, specs and pushed images to the program's input: what `sls deploy`,
 * `sls gpu plan` and `sls gpu eject` all declare. Functions on the local target are not in it.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { ServiceConfig } from './config';
import type { FunctionSpec } from './spec';
import type { ProgramInput } from '../providers/program';
import { IMAGES_FILE, registryFor, type BuiltImage } from './image';

/** Images recorded by the last `sls package`, by function. */
export function readImages(outDir: string): Record<string, BuiltImage> {
  try {
    return JSON.parse(fs.readFileSync(path.join(outDir, IMAGES_FILE), 'utf8')) as Record<string, BuiltImage>;
  } catch {
    return {};
  }
}

/** What a function's image will be called before it is built: plan works before any build. */
export function placeholderImage(config: ServiceConfig, spec: FunctionSpec): string {
  return `${registryFor(config, spec) ?? 'registry.invalid/unset'}/${config.service.toLowerCase()}:${spec.name.toLowerCase()}-not-built-yet`;
}

export function programInput(config: ServiceConfig, specs: readonly FunctionSpec[], images: Readonly<Record<string, { reference: string }>>): ProgramInput {
  const { provider } = config;
  return {
    service: config.service,
    stage: config.stage,
    registry: provider.registry,
    gcp: provider.gcp,
    gke: provider.gke,
    aws: provider.aws,
    weightsBucket: provider.weights?.bucket,
    functions: specs
      .filter((spec) => spec.target !== 'local')
      .map((spec) => ({ spec, image: images[spec.name]?.reference ?? placeholderImage(config, spec) })),
  };
}

/** Pulumi provider config from serverless.yml. */
export function pulumiConfig(config: ServiceConfig): Record<string, string> {
  const out: Record<string, string> = {};
  if (config.provider.gcp?.project) out['gcp:project'] = config.provider.gcp.project;
  if (config.provider.gcp?.region) out['gcp:region'] = config.provider.gcp.region;
  if (config.provider.aws?.region) out['aws:region'] = config.provider.aws.region;
  return out;
}

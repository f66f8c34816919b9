/**
 * The compile pipeline behind `sls package`: discover → specs (and target rules) → contracts → bundles → images.
 * Pure over its inputs except for the files it writes under `.serverless/gpu/`.
 */
import fs from 'node:fs';
import path from 'node:path';
import { bundleFunction, bundleShim, type FunctionArtifact } from './bundle';
import type { ServiceConfig } from './config';
import { readContracts, type Contract, type ContractRequest } from './contract';
import { locateHandler, readAnnotations, type HandlerSource } from './discover';
import { ConfigError } from './errors';
import { resolveSpec, type AnnotationOptions, type FunctionSpec } from './spec';
import type { ProviderIO } from '../providers/types';
import { buildImages, writeImagesFile, type BuiltImage } from './image';
import { weightsPath } from './weights-path';
import { checkTargets } from './target-rules';

export interface CompiledFunctionInfo {
  readonly spec: FunctionSpec;
  readonly contract: Contract;
  readonly artifact: FunctionArtifact;
  /** The pushed code image, for targets that run containers. */
  readonly image?: BuiltImage;
}

export interface CompiledService {
  readonly config: ServiceConfig;
  readonly functions: readonly CompiledFunctionInfo[];
}

export function outputDir(config: ServiceConfig): string {
  return path.join(config.serviceDir, '.serverless', 'gpu');
}

/** Reads every function's annotation and resolves its spec (no bundling): what validation needs. */
export async function resolveSpecs(config: ServiceConfig): Promise<Array<{ spec: FunctionSpec; source: HandlerSource }>> {
  const annotationsByFile = new Map<string, Promise<Map<string, AnnotationOptions>>>();
  const resolved: Array<{ spec: FunctionSpec; source: HandlerSource }> = [];
  for (const fn of config.functions) {
    const source = locateHandler(config.serviceDir, fn);
    if (!annotationsByFile.has(source.file)) annotationsByFile.set(source.file, readAnnotations(source, config.serviceDir));
    const annotations = await annotationsByFile.get(source.file)!;
    const annotation = annotations.get(source.exportName);
    if (!annotation) {
      const found = [...annotations.keys()];
      throw new ConfigError(
        `functions.${fn.name}.handler`,
        `${source.relFile} has no export "${source.exportName}" made by fn() or cls()` +
          (found.length ? ` (annotated exports: ${found.join(', ')})` : ''),
      );
    }
    resolved.push({ spec: resolveSpec(config, fn, source, annotation), source });
  }
  checkTargets(config, resolved.map((r) => r.spec));
  return resolved;
}

export async function compileService(config: ServiceConfig, io: ProviderIO): Promise<CompiledService> {
  const progress = io.progress('gpu-compile', 'reading annotations');
  try {
    const resolved = await resolveSpecs(config);
    progress.update('reading handler types');
    const requests = resolved.map(({ spec, source }): ContractRequest => ({ file: source.file, exportName: source.exportName, functionName: spec.name }));
    const contracts = readContracts(requests, config.serviceDir);
    const outDir = outputDir(config);
    fs.mkdirSync(outDir, { recursive: true });
    const shimFile = path.join(outDir, '_shim', 'shim.js');
    progress.update('bundling the runtime shim');
    await bundleShim(shimFile);
    const functions: CompiledFunctionInfo[] = [];
    for (const [index, { spec }] of resolved.entries()) {
      progress.update(`bundling ${spec.name} (${index + 1}/${resolved.length})`);
      const contract = contracts.get(requests[index])!;
      const artifact = await bundleFunction(spec, contract, {
        outDir,
        serviceDir: config.serviceDir,
        shimFile,
        external: config.external,
        weightsPath: weightsPath(config, spec),
      });
      io.verbose(`bundled ${spec.name} → ${path.relative(config.serviceDir, artifact.dir)}${artifact.externals.length ? ` (external: ${artifact.externals.join(', ')})` : ''}`);
      functions.push({ spec, contract, artifact });
    }
    const containers = functions.filter((f) => f.spec.target !== 'local');
    if (containers.length > 0) {
      const images = await buildImages(
        config,
        containers.map((f) => ({ spec: f.spec, artifactDir: f.artifact.dir, externals: f.artifact.externals })),
        io,
      );
      writeImagesFile(outDir, images);
      for (const [index, f] of functions.entries()) if (images.has(f.spec.name)) functions[index] = { ...f, image: images.get(f.spec.name) };
    }
    fs.writeFileSync(
      path.join(outDir, 'specs.json'),
      `${JSON.stringify(functions.map((f) => ({ spec: f.spec, externals: f.artifact.externals, image: f.image?.reference })), null, 2)}\n`,
    );
    return { config, functions };
  } finally {
    progress.remove();
  }
}

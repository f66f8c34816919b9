/** Reading the manifest the plugin writes beside a bundle, and the annotated function it names. */
import fs from 'node:fs';
import path from 'node:path';
import { isGpuFunction } from './runtime';
import type { ShimManifest } from './manifest';
import type { GpuFunction } from './types';

export function loadManifest(file: string): ShimManifest {
  const manifest = JSON.parse(fs.readFileSync(file, 'utf8')) as ShimManifest;
  if (manifest.v !== 1) throw new Error(`${file}: manifest version ${String(manifest.v)} is not supported`);
  return manifest;
}

export function loadFunction(manifestFile: string, manifest: ShimManifest): GpuFunction<unknown, unknown> {
  const bundle = path.resolve(path.dirname(manifestFile), manifest.bundle);
  const exported = (require(bundle) as Record<string, unknown>)[manifest.export];
  if (!isGpuFunction(exported)) {
    throw new Error(`${bundle}: export "${manifest.export}" is not a function annotated with fn() or cls()`);
  }
  return exported;
}

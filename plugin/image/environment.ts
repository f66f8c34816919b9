/**
 * Environment images: the `Image` spec (plus the pinned external modules and the content of copied
 * files) hashed into a tag; built only when that tag is missing from the registry — one manifest HEAD
 * tells — so two functions with the same environment share one image and an unchanged one costs nothing.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ImageStep } from '../../runtime-shim/image';
import { canonicalJson } from '../../runtime-shim/image';
import type { RegistryClient } from '../../providers/registry/client';
import { ConfigError } from '../errors';
import type { Builder } from './builder';
import { renderContainerfile } from './containerfile';

export interface EnvironmentSpec {
  readonly steps: readonly ImageStep[];
  /** `name@version` of external modules to install. */
  readonly externals: readonly string[];
}

export interface EnvironmentImage {
  readonly tag: string;
  readonly ref: string;
  /** False when the registry had it already. */
  readonly built: boolean;
}

/** Hash of every file under `source` (sorted paths and contents), so a changed copied file changes the tag. */
function hashTree(source: string): string {
  const hash = createHash('sha256');
  const walk = (dir: string, rel: string): void => {
    const stat = fs.statSync(dir);
    if (stat.isFile()) {
      hash.update(`${rel}\0${stat.mode & 0o111 ? 'x' : '-'}\0`).update(fs.readFileSync(dir)).update('\0');
      return;
    }
    for (const name of fs.readdirSync(dir).sort()) walk(path.join(dir, name), `${rel}/${name}`);
  };
  walk(source, '');
  return hash.digest('hex');
}

export function copySource(serviceDir: string, source: string): string {
  const resolved = path.resolve(serviceDir, source);
  if (!fs.existsSync(resolved)) throw new ConfigError(`Image.copy("${source}")`, `no such file or folder in ${serviceDir}`);
  return resolved;
}

/** The environment's tag: `env-` and 32 hex digits of the hash over everything that goes into it. */
export function environmentTag(spec: EnvironmentSpec, serviceDir: string): string {
  const copies = spec.steps.flatMap((step) => (step.op === 'copy' ? [hashTree(copySource(serviceDir, step.source))] : []));
  const hash = createHash('sha256').update(canonicalJson({ steps: spec.steps, externals: spec.externals, copies })).digest('hex');
  return `env-${hash.slice(0, 32)}`;
}

export async function ensureEnvironmentImage(request: {
  readonly spec: EnvironmentSpec;
  readonly serviceDir: string;
  readonly registry: string;
  readonly repository: string;
  readonly client: RegistryClient;
  readonly builder: () => Builder;
  readonly onLine: (line: string) => void;
}): Promise<EnvironmentImage> {
  const tag = environmentTag(request.spec, request.serviceDir);
  const ref = `${request.registry}/${request.repository}:${tag}`;
  if (await request.client.manifestDigest(request.repository, tag)) return { tag, ref, built: false };
  const rendered = renderContainerfile({ steps: request.spec.steps, externals: request.spec.externals, tag });
  const contextDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sgpu-env-'));
  try {
    fs.writeFileSync(path.join(contextDir, 'Containerfile'), rendered.text);
    for (const copy of rendered.copies) {
      fs.cpSync(copySource(request.serviceDir, copy.source), path.join(contextDir, copy.contextName), { recursive: true });
    }
    const base = request.spec.steps[0].op === 'from' ? request.spec.steps[0].base : '';
    await request.builder().buildAndPush({ contextDir, ref, base, onLine: request.onLine });
  } finally {
    fs.rmSync(contextDir, { recursive: true, force: true });
  }
  return { tag, ref, built: true };
}

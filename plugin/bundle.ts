/**
 * Bundles each function with esbuild, and the shim's entry point beside it, into
 * `.serverless/gpu/<function>/`: what a local process runs and what the code layer of an image holds.
 * Native modules (a `binding.gyp`, `.node` files or a prebuild loader in the package) and the packages
 * the image installs stay external: they are installed in the image, not bundled.
 */
import fs from 'node:fs';
import path from 'node:path';
import * as esbuild from 'esbuild';
import { BuildError } from './errors';
import type { FunctionSpec } from './spec';
import { MANIFEST_FILE, type ShimManifest } from '../runtime-shim/manifest';
import type { Contract } from './contract';

export const BUNDLE_FILE = 'bundle.js';
export const SHIM_FILE = 'shim.js';

export interface FunctionArtifact {
  readonly name: string;
  /** Folder holding bundle.js, shim.js and manifest.json. */
  readonly dir: string;
  readonly manifestFile: string;
  /** Bare modules left out of the bundle, to be installed where it runs. */
  readonly externals: readonly string[];
}

const PREBUILD_LOADERS = ['node-gyp-build', 'prebuild-install', 'bindings', '@mapbox/node-pre-gyp', 'node-pre-gyp', 'cmake-js'];

function packageName(specifier: string): string {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
}

/** True when the package at `dir` builds or loads a native addon. */
export function isNativePackage(dir: string): boolean {
  try {
    if (fs.existsSync(path.join(dir, 'binding.gyp'))) return true;
    const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as {
      gypfile?: boolean;
      binary?: unknown;
      dependencies?: Record<string, string>;
    };
    if (pkg.gypfile || pkg.binary) return true;
    return PREBUILD_LOADERS.some((loader) => pkg.dependencies?.[loader] !== undefined);
  } catch {
    return false;
  }
}

function findPackageDir(fromDir: string, name: string): string | undefined {
  for (let dir = fromDir; ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, 'node_modules', name);
    if (fs.existsSync(path.join(candidate, 'package.json'))) return candidate;
    if (path.dirname(dir) === dir) return undefined;
  }
}

function externalsPlugin(declared: ReadonlySet<string>, found: Set<string>): esbuild.Plugin {
  return {
    name: 'serverless-gpu-externals',
    setup(build) {
      build.onResolve({ filter: /^[^./]/ }, (args) => {
        if (args.path.startsWith('node:')) return undefined;
        const name = packageName(args.path);
        if (name === 'serverless-gpu') return undefined;
        const dir = declared.has(name) ? undefined : findPackageDir(args.resolveDir, name);
        if (declared.has(name) || (dir && isNativePackage(dir))) {
          found.add(name);
          return { path: args.path, external: true };
        }
        return undefined;
      });
    },
  };
}

/** Packages the image installs with `.npm([...])`, by name (versions stripped). */
export function imageNpmPackages(spec: FunctionSpec): string[] {
  return (spec.image?.steps ?? []).flatMap((step) =>
    step.op === 'npm' ? step.packages.map((p) => (p.startsWith('@') ? `@${p.slice(1).split('@')[0]}` : p.split('@')[0])) : [],
  );
}

async function build(options: esbuild.BuildOptions, what: string): Promise<esbuild.BuildResult> {
  try {
    return await esbuild.build({ logLevel: 'silent', ...options });
  } catch (error) {
    const failure = error as esbuild.BuildFailure;
    const messages = failure.errors?.map((e) => `${e.location ? `${e.location.file}:${e.location.line}: ` : ''}${e.text}`);
    throw new BuildError('BUNDLE', `${what} could not be bundled:\n  ${messages?.join('\n  ') ?? failure.message}`);
  }
}

/** The shim's entry point, bundled once per packaging run and copied beside each function. */
/** Every input of the last shim bundle with its size and mtime: the bundle is reused while they all match. */
type ShimInputs = Array<[file: string, size: number, mtimeMs: number]>;

function unchanged(stampFile: string, outFile: string): boolean {
  try {
    if (!fs.existsSync(outFile)) return false;
    const inputs = JSON.parse(fs.readFileSync(stampFile, 'utf8')) as ShimInputs;
    return inputs.every(([file, size, mtimeMs]) => {
      const stat = fs.statSync(file, { throwIfNoEntry: false });
      return stat !== undefined && stat.size === size && stat.mtimeMs === mtimeMs;
    });
  } catch {
    return false;
  }
}

/**
 * The shim's entry point bundled once per packaging run and copied beside each function. The bundle
 * (with the AWS SDK the batch runner uses) takes a few hundred ms, so it is reused across runs while
 * none of its inputs changed.
 */
export async function bundleShim(outFile: string): Promise<void> {
  const stampFile = `${outFile}.inputs.json`;
  if (unchanged(stampFile, outFile)) return;
  const root = path.join(__dirname, '..', '..');
  const entry = path.join(__dirname, '..', 'runtime-shim', 'main.js');
  const result = await build(
    { entryPoints: [entry], outfile: outFile, absWorkingDir: root, bundle: true, platform: 'node', target: 'node20', format: 'cjs', sourcemap: 'linked', metafile: true },
    'the runtime shim',
  );
  const inputs: ShimInputs = Object.keys(result.metafile?.inputs ?? {}).map((input) => {
    const file = path.resolve(root, input);
    const stat = fs.statSync(file);
    return [file, stat.size, stat.mtimeMs];
  });
  fs.writeFileSync(stampFile, JSON.stringify(inputs));
}

export async function bundleFunction(
  spec: FunctionSpec,
  contract: Contract,
  options: { outDir: string; serviceDir: string; shimFile: string; external: readonly string[]; weightsPath: string },
): Promise<FunctionArtifact> {
  const dir = path.join(options.outDir, spec.name);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  const found = new Set<string>();
  const declared = new Set([...options.external, ...imageNpmPackages(spec)]);
  await build(
    {
      entryPoints: [spec.file],
      absWorkingDir: options.serviceDir,
      outfile: path.join(dir, BUNDLE_FILE),
      bundle: true,
      platform: 'node',
      target: 'node20',
      format: 'cjs',
      sourcemap: 'linked',
      sourcesContent: false,
      plugins: [externalsPlugin(declared, found)],
    },
    `function ${spec.name} (${spec.relFile})`,
  );
  fs.copyFileSync(options.shimFile, path.join(dir, SHIM_FILE));
  if (fs.existsSync(`${options.shimFile}.map`)) fs.copyFileSync(`${options.shimFile}.map`, path.join(dir, `${SHIM_FILE}.map`));
  const manifest: ShimManifest = {
    v: 1,
    service: spec.service,
    function: spec.name,
    export: spec.exportName,
    bundle: `./${BUNDLE_FILE}`,
    contract,
    concurrency: spec.concurrency,
    timeoutMs: spec.timeoutMs,
    weightsPath: options.weightsPath,
  };
  const manifestFile = path.join(dir, MANIFEST_FILE);
  fs.writeFileSync(manifestFile, `${JSON.stringify(manifest, null, 2)}\n`);
  return { name: spec.name, dir, manifestFile, externals: [...found].sort() };
}

/**
 * Finds each function's handler file and reads its annotation. The annotation's options are values
 * (an `Image` chain, computed numbers), so the file is bundled with esbuild and evaluated, with every
 * third-party import replaced by an inert stub: no GPU library has to be installed to package a service.
 */
import fs from 'node:fs';
import path from 'node:path';
import { builtinModules } from 'node:module';
import * as esbuild from 'esbuild';
import { ConfigError } from './errors';
import type { FunctionConfig } from './config';
import type { AnnotationOptions } from './spec';

const SOURCE_EXTENSIONS = ['.ts', '.mts', '.cts', '.tsx', '.js', '.mjs', '.cjs'];
const RUNTIME_MODULE = 'serverless-gpu/runtime';
const GPU_FUNCTION = Symbol.for('serverless-gpu.function');

export interface HandlerSource {
  readonly file: string;
  readonly relFile: string;
  readonly exportName: string;
}

/** `src/classify.classify` → the source file and the export. */
export function locateHandler(serviceDir: string, fn: FunctionConfig): HandlerSource {
  const cut = fn.handler.lastIndexOf('.');
  const base = fn.handler.slice(0, cut);
  const exportName = fn.handler.slice(cut + 1);
  for (const ext of SOURCE_EXTENSIONS) {
    const file = path.resolve(serviceDir, base + ext);
    if (fs.existsSync(file)) return { file, relFile: path.relative(serviceDir, file), exportName };
  }
  throw new ConfigError(
    `functions.${fn.name}.handler`,
    `no file ${base}.ts (or ${SOURCE_EXTENSIONS.slice(1).join(', ')}) in ${serviceDir}`,
  );
}

const STUB_SOURCE = `
const handler = {
  get(_t, key) { if (key === Symbol.toPrimitive) return () => ''; if (key === 'then' || key === '__esModule') return undefined; return stub; },
  apply() { return stub; },
  construct() { return stub; },
};
const stub = new Proxy(function () {}, handler);
module.exports = stub;
`;

const builtins = new Set([...builtinModules, ...builtinModules.map((m) => `node:${m}`)]);

/** An esbuild plugin that stubs every bare import except the runtime and Node's own modules. */
function stubThirdParty(): esbuild.Plugin {
  return {
    name: 'serverless-gpu-stub',
    setup(build) {
      build.onResolve({ filter: /^[^./]/ }, (args) => {
        if (builtins.has(args.path) || args.path === RUNTIME_MODULE || args.path.startsWith(`${RUNTIME_MODULE}/`)) return undefined;
        if (args.path === 'serverless-gpu') return undefined;
        return { path: args.path, namespace: 'sgpu-stub' };
      });
      build.onLoad({ filter: /.*/, namespace: 'sgpu-stub' }, () => ({ contents: STUB_SOURCE, loader: 'js' }));
    },
  };
}

/** Evaluates a handler file and returns the options of every annotated export in it. */
export async function readAnnotations(source: HandlerSource, serviceDir: string): Promise<Map<string, AnnotationOptions>> {
  let code: string;
  try {
    const result = await esbuild.build({
      entryPoints: [source.file],
      absWorkingDir: serviceDir,
      bundle: true,
      write: false,
      platform: 'node',
      target: 'node20',
      format: 'cjs',
      logLevel: 'silent',
      plugins: [stubThirdParty()],
    });
    code = result.outputFiles[0].text;
  } catch (error) {
    const messages = (error as esbuild.BuildFailure).errors?.map((e) => `${e.location?.file ?? ''}:${e.location?.line ?? ''} ${e.text}`);
    throw new ConfigError(source.relFile, `cannot be bundled: ${messages?.join('; ') ?? (error as Error).message}`);
  }
  const module = { exports: {} as Record<string, unknown> };
  try {
    const evaluate = new Function('module', 'exports', 'require', '__filename', '__dirname', code);
    evaluate(module, module.exports, require, source.file, path.dirname(source.file));
  } catch (error) {
    throw new ConfigError(source.relFile, `threw while being loaded to read its annotations: ${(error as Error).message}`);
  }
  const found = new Map<string, AnnotationOptions>();
  for (const [name, value] of Object.entries(module.exports)) {
    if (typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[GPU_FUNCTION] === true) {
      found.set(name, (value as { options: AnnotationOptions }).options);
    }
  }
  return found;
}

/**
 * An immutable, chainable container image spec, like Modal's `Image`. Each step carries a hash chained
 * from its parent's, so two functions with the same environment share one image and a change to one
 * step changes the hash of it and of every step after it.
 */
import { createHash } from 'node:crypto';

export type ImageStep =
  | { readonly op: 'from'; readonly base: string }
  | { readonly op: 'apt'; readonly packages: readonly string[] }
  | { readonly op: 'pip'; readonly packages: readonly string[] }
  | { readonly op: 'npm'; readonly packages: readonly string[] }
  | { readonly op: 'node'; readonly version: string }
  | { readonly op: 'run'; readonly command: string }
  | { readonly op: 'env'; readonly vars: Readonly<Record<string, string>> }
  | { readonly op: 'workdir'; readonly dir: string }
  | { readonly op: 'copy'; readonly source: string; readonly dest: string };

const IMAGE = Symbol.for('serverless-gpu.image');

function hashStep(parent: string, step: ImageStep): string {
  return createHash('sha256').update(parent).update('\n').update(canonicalJson(step)).digest('hex');
}

/** JSON with sorted keys: the same step always hashes the same. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, item]) => item !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([key, item]) => `${JSON.stringify(key)}:${canonicalJson(item)}`).join(',')}}`;
}

function nonEmptyStrings(method: string, values: readonly string[]): readonly string[] {
  if (!Array.isArray(values) || values.length === 0) {
    throw new TypeError(`Image.${method}() needs a non-empty array of strings`);
  }
  for (const value of values) {
    if (typeof value !== 'string' || value.trim() === '') {
      throw new TypeError(`Image.${method}() got ${JSON.stringify(value)}: each entry must be a non-empty string`);
    }
  }
  return [...values];
}

function nonEmpty(method: string, value: string): string {
  if (typeof value !== 'string' || value.trim() === '') {
    throw new TypeError(`Image.${method}() needs a non-empty string`);
  }
  return value;
}

export class Image {
  readonly [IMAGE] = true;

  private constructor(
    /** Steps from the base, in order. */
    readonly steps: readonly ImageStep[],
    /** Hash of the whole chain: the environment image's tag. */
    readonly hash: string,
  ) {}

  /** Starts from a base image reference, e.g. `nvidia/cuda:12.4.1-runtime-ubuntu22.04`. */
  static from(base: string): Image {
    const step: ImageStep = { op: 'from', base: nonEmpty('from', base) };
    return new Image([step], hashStep('', step));
  }

  /** True for an `Image` made by any copy of this module (handlers bundle their own). */
  static isImage(value: unknown): value is Image {
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[IMAGE] === true;
  }

  /** Rebuilds an image from its steps (as recorded in a spec). */
  static fromSteps(steps: readonly ImageStep[]): Image {
    if (steps.length === 0 || steps[0].op !== 'from') throw new TypeError('an image spec must start with a "from" step');
    let image = new Image([steps[0]], hashStep('', steps[0]));
    for (const step of steps.slice(1)) image = image.then(step);
    return image;
  }

  apt(packages: readonly string[]): Image {
    return this.then({ op: 'apt', packages: nonEmptyStrings('apt', packages) });
  }

  pip(packages: readonly string[]): Image {
    return this.then({ op: 'pip', packages: nonEmptyStrings('pip', packages) });
  }

  npm(packages: readonly string[]): Image {
    return this.then({ op: 'npm', packages: nonEmptyStrings('npm', packages) });
  }

  /** Installs Node.js of this major version (the shim needs Node 20 or later). */
  node(version: string): Image {
    return this.then({ op: 'node', version: nonEmpty('node', String(version)) });
  }

  run(command: string): Image {
    return this.then({ op: 'run', command: nonEmpty('run', command) });
  }

  env(vars: Readonly<Record<string, string>>): Image {
    for (const [key, value] of Object.entries(vars ?? {})) {
      if (typeof value !== 'string') throw new TypeError(`Image.env(): "${key}" must be a string`);
    }
    return this.then({ op: 'env', vars: { ...vars } });
  }

  workdir(dir: string): Image {
    return this.then({ op: 'workdir', dir: nonEmpty('workdir', dir) });
  }

  copy(source: string, dest: string): Image {
    return this.then({ op: 'copy', source: nonEmpty('copy', source), dest: nonEmpty('copy', dest) });
  }

  /** The base image reference. */
  get base(): string {
    const first = this.steps[0];
    return first.op === 'from' ? first.base : '';
  }

  toJSON(): { steps: readonly ImageStep[]; hash: string } {
    return { steps: this.steps, hash: this.hash };
  }

  private then(step: ImageStep): Image {
    return new Image([...this.steps, step], hashStep(this.hash, step));
  }
}

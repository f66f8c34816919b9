import fs from 'node:fs';
import path from 'node:path';
import { cls, Image, type Context, type SetupContext } from 'serverless-gpu/runtime';

const image = Image.from('nvidia/cuda:12.4.1-runtime-ubuntu22.04').node('20');

export interface EmbedInput {
  texts: string[];
  /** Scale every vector to unit length (default true). */
  normalize?: boolean;
}

export interface EmbedOutput {
  vectors: Float32Array[];
  dim: number;
  model: string;
}

interface Projection {
  readonly name: string;
  readonly dim: number;
  readonly seed: number;
}

/** A deterministic hashing projection: word and character-trigram features into `dim` signed buckets. */
function hash(text: string, seed: number): number {
  let h = 2166136261 ^ seed;
  for (let i = 0; i < text.length; i += 1) h = Math.imul(h ^ text.charCodeAt(i), 16777619);
  return h >>> 0;
}

function embedOne(text: string, projection: Projection, normalize: boolean): Float32Array {
  const vector = new Float32Array(projection.dim);
  const words = text.toLowerCase().match(/[a-z0-9]+/g) ?? [];
  const features = [...words, ...words.flatMap((w) => Array.from({ length: Math.max(0, w.length - 2) }, (_, i) => `#${w.slice(i, i + 3)}`))];
  for (const feature of features) {
    const h = hash(feature, projection.seed);
    vector[h % projection.dim] += h & 0x80000000 ? -1 : 1;
  }
  if (normalize) {
    const norm = Math.hypot(...vector) || 1;
    for (let i = 0; i < vector.length; i += 1) vector[i] /= norm;
  }
  return vector;
}

/**
 * Text embeddings served on GKE Autopilot: the projection is loaded once per pod in setup (from the
 * weights mount, or the built-in default) and every call embeds a batch of texts.
 */
export const embed = cls(
  { gpu: 'L4', image, weights: { prefix: 'embeddings/v1' }, minInstances: 1, maxInstances: 8, concurrency: 16, timeout: '30s', cpu: 4, memory: '16Gi' },
  class Embedder {
    private projection: Projection = { name: 'hashing-256-default', dim: 256, seed: 7 };

    setup(ctx: SetupContext): void {
      const file = path.join(ctx.weights.path, 'projection.json');
      if (fs.existsSync(file)) this.projection = JSON.parse(fs.readFileSync(file, 'utf8')) as Projection;
      ctx.log(`projection ${this.projection.name} (${this.projection.dim} dims)`);
    }

    handle(input: EmbedInput, ctx: Context): EmbedOutput {
      if (input.texts.length > 512) throw new RangeError(`at most 512 texts per call, got ${input.texts.length}`);
      ctx.log(`embedding ${input.texts.length} text(s)`);
      return {
        vectors: input.texts.map((text) => embedOne(text, this.projection, input.normalize ?? true)),
        dim: this.projection.dim,
        model: this.projection.name,
      };
    }
  },
);

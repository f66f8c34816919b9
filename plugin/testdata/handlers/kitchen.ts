import { cls, fn, Image, type Context } from 'serverless-gpu/runtime';

export type Mode = 'fast' | 'accurate';

export interface EmbedInput {
  texts: string[];
  mode?: Mode;
  /** Raw bytes of an image. */
  image?: Uint8Array;
  weights: Float32Array;
  pair: [string, number];
  tags: Record<string, number>;
  flag: boolean;
  when?: Date;
  nested: { deep: { value: number | null } };
}

export interface EmbedOutput {
  vectors: Float32Array[];
  mode: Mode;
  count: number;
}

const image = Image.from('node:20-slim').npm(['left-pad@1.3.0']);

export const embed = fn(
  { gpu: { type: 'L4', count: 2 }, image, minInstances: 1, maxInstances: 4, concurrency: 3, timeout: '90s', memory: '16Gi', cpu: 8 },
  async (input: EmbedInput): Promise<EmbedOutput> => ({ vectors: [input.weights], mode: input.mode ?? 'fast', count: input.texts.length }),
);

export const shout = cls(
  { timeout: 5 },
  class {
    prefix = '';
    setup(): void {
      this.prefix = '!';
    }
    handle(input: string, ctx: Context): string {
      return `${this.prefix}${input.toUpperCase()} ${ctx.functionName}`;
    }
  },
);

export const nothing = fn({}, () => undefined);

export const notAnnotated = 42;

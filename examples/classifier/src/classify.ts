import fs from 'node:fs';
import path from 'node:path';
import { cls, Image, type Context, type SetupContext } from 'serverless-gpu/runtime';
import { predict, type Model } from './model';

const image = Image.from('nvidia/cuda:12.4.1-runtime-ubuntu22.04').node('20');

export interface ClassifyInput {
  text: string;
}

export interface ClassifyOutput {
  label: string;
  score: number;
  /** The model version that answered. */
  model: string;
}

/**
 * Serves the trained model: loaded once per container in setup and kept in memory; a newer model
 * written by train is picked up by the next call (one stat per call), so retraining needs no redeploy.
 */
export const classify = cls(
  { gpu: 'L4', image, weights: { prefix: 'classifier' }, minInstances: 1, maxInstances: 20, concurrency: 8, timeout: '60s' },
  class Classifier {
    private model: Model | undefined;
    private loadedAt = 0;
    private file = '';

    setup(ctx: SetupContext): void {
      this.file = path.join(ctx.weights.path, 'model.json');
      if (this.refresh()) ctx.log(`loaded model ${this.model!.version}`);
      else ctx.log('no model yet: spawn train first');
    }

    handle(input: ClassifyInput, ctx: Context): ClassifyOutput {
      if (this.refresh()) ctx.log(`loaded model ${this.model!.version}`);
      if (!this.model) throw new Error(`no trained model at ${this.file}: spawn train first`);
      return { ...predict(this.model, input.text), model: this.model.version };
    }

    /** Loads the model when the file is newer than the one in memory; true when it loaded one. */
    private refresh(): boolean {
      let mtime: number;
      try {
        mtime = fs.statSync(this.file).mtimeMs;
      } catch {
        return false;
      }
      if (this.model && mtime <= this.loadedAt) return false;
      this.model = JSON.parse(fs.readFileSync(this.file, 'utf8')) as Model;
      this.loadedAt = mtime;
      return true;
    }
  },
);

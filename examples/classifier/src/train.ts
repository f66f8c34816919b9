import fs from 'node:fs';
import path from 'node:path';
import { fn, Image } from 'serverless-gpu/runtime';
import jobs from '../data/jobs-2026.json';
import { predict, trainModel, type Example } from './model';

export const image = Image.from('nvidia/cuda:12.4.1-runtime-ubuntu22.04').node('20');

const DATASETS: Record<string, { rows: Example[] }> = { 'jobs-2026': jobs };

export interface TrainInput {
  /** Name of a labelled data set shipped with the example. */
  dataset: string;
  /** Share of rows held out to measure accuracy; default 0.2. */
  holdout?: number;
}

export interface TrainOutput {
  version: string;
  labels: string[];
  trainedOn: number;
  heldOut: number;
  accuracy: number;
  modelFile: string;
}

/** Trains a model on a data set and writes it where the weights live; classify picks it up. */
export const train = fn(
  { gpu: 'L4', image, weights: { prefix: 'classifier' }, timeout: '2h', retries: 1, memory: '16Gi', cpu: 4 },
  async (input: TrainInput, ctx): Promise<TrainOutput> => {
    const data = DATASETS[input.dataset];
    if (!data) throw new Error(`unknown data set "${input.dataset}"; known: ${Object.keys(DATASETS).join(', ')}`);
    const holdout = input.holdout ?? 0.2;
    if (!(holdout >= 0 && holdout < 1)) throw new RangeError(`holdout must be in [0, 1), got ${holdout}`);
    // Every k-th row is held out: deterministic, and every label is represented in both parts.
    const k = holdout > 0 ? Math.round(1 / holdout) : Infinity;
    const test = data.rows.filter((_, i) => i % k === k - 1);
    const trainRows = data.rows.filter((_, i) => i % k !== k - 1);
    const version = `${input.dataset}-${Date.now()}`;
    const model = trainModel(trainRows, version);
    const correct = test.filter((row) => predict(model, row.text).label === row.label).length;
    fs.mkdirSync(ctx.weights.path, { recursive: true });
    const modelFile = path.join(ctx.weights.path, 'model.json');
    fs.writeFileSync(`${modelFile}.tmp`, JSON.stringify(model));
    fs.renameSync(`${modelFile}.tmp`, modelFile); // readers never see half a model
    ctx.log(`trained ${version} on ${trainRows.length} rows`);
    return {
      version,
      labels: model.labels,
      trainedOn: trainRows.length,
      heldOut: test.length,
      accuracy: test.length ? correct / test.length : 1,
      modelFile: 'model.json',
    };
  },
);

import { fn, Image } from 'serverless-gpu/runtime';
import messages from '../data/messages-2026.json';

const image = Image.from('nvidia/cuda:12.4.1-runtime-ubuntu22.04').node('20');

export interface FoldInput {
  /** Which fold is held out, 0..k-1. */
  fold: number;
  k: number;
  /** Seed of the shuffle, so every fold sees the same split. */
  seed: number;
  epochs?: number;
  learningRate?: number;
}

export interface FoldResult {
  fold: number;
  trainedOn: number;
  testedOn: number;
  accuracy: number;
  logLoss: number;
}

interface Row {
  text: string;
  label: number;
}

function tokens(text: string): string[] {
  return text.toLowerCase().match(/[a-z0-9$]+/g) ?? [];
}

/** Deterministic Fisher-Yates shuffle (mulberry32). */
function shuffled<T>(items: readonly T[], seed: number): T[] {
  let a = seed >>> 0;
  const random = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const out = [...items];
  for (let i = out.length - 1; i > 0; i -= 1) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

/**
 * Trains a logistic-regression phishing detector on every fold but one and evaluates it on the held-out
 * fold: one of K independent jobs, mapped in parallel over AWS Batch (the Doppel seed's K-fold).
 */
export const trainFold = fn(
  { gpu: 'L4', image, timeout: '1h', retries: 2, cpu: 4, memory: '15Gi' },
  (input: FoldInput): FoldResult => {
    if (!Number.isInteger(input.k) || input.k < 2) throw new RangeError(`k must be an integer >= 2, got ${input.k}`);
    if (!Number.isInteger(input.fold) || input.fold < 0 || input.fold >= input.k) throw new RangeError(`fold must be in 0..${input.k - 1}, got ${input.fold}`);
    const rows = shuffled((messages as { rows: Row[] }).rows, input.seed);
    const test = rows.filter((_, i) => i % input.k === input.fold);
    const train = rows.filter((_, i) => i % input.k !== input.fold);
    const vocabulary = new Map<string, number>();
    for (const row of train) for (const token of tokens(row.text)) if (!vocabulary.has(token)) vocabulary.set(token, vocabulary.size);
    const weights = new Float64Array(vocabulary.size + 1);
    const features = (text: string): number[] => [...new Set(tokens(text).map((t) => vocabulary.get(t)).filter((i): i is number => i !== undefined))];
    const score = (ids: number[]): number => 1 / (1 + Math.exp(-(weights[vocabulary.size] + ids.reduce((sum, id) => sum + weights[id], 0))));
    const rate = input.learningRate ?? 0.5;
    for (let epoch = 0; epoch < (input.epochs ?? 20); epoch += 1) {
      for (const row of train) {
        const ids = features(row.text);
        const gradient = score(ids) - row.label;
        for (const id of ids) weights[id] -= rate * gradient;
        weights[vocabulary.size] -= rate * gradient;
      }
    }
    let correct = 0;
    let loss = 0;
    for (const row of test) {
      const p = Math.min(1 - 1e-9, Math.max(1e-9, score(features(row.text))));
      if ((p >= 0.5 ? 1 : 0) === row.label) correct += 1;
      loss -= row.label * Math.log(p) + (1 - row.label) * Math.log(1 - p);
    }
    return { fold: input.fold, trainedOn: train.length, testedOn: test.length, accuracy: correct / test.length, logLoss: loss / test.length };
  },
);

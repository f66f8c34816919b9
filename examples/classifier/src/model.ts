/**
 * A small multinomial naive Bayes text classifier: enough to show training as a spawned job and a
 * model loaded once per container, without a GPU library. Word unigrams and bigrams, Laplace smoothing.
 */
export interface Model {
  readonly version: string;
  readonly labels: string[];
  readonly vocabulary: string[];
  readonly logPriors: number[];
  /** logLikelihoods[label][word] */
  readonly logLikelihoods: number[][];
  readonly unknownLogLikelihood: number[];
}

export interface Example {
  readonly text: string;
  readonly label: string;
}

export function tokens(text: string): string[] {
  const words = text.toLowerCase().match(/[a-z0-9#+]+/g) ?? [];
  const grams = [...words];
  for (let i = 0; i + 1 < words.length; i += 1) grams.push(`${words[i]}_${words[i + 1]}`);
  return grams;
}

export function trainModel(examples: readonly Example[], version: string): Model {
  const labels = [...new Set(examples.map((e) => e.label))].sort();
  const vocabulary = [...new Set(examples.flatMap((e) => tokens(e.text)))].sort();
  const index = new Map(vocabulary.map((w, i) => [w, i]));
  const counts = labels.map(() => new Array<number>(vocabulary.length).fill(0));
  const docs = labels.map(() => 0);
  for (const example of examples) {
    const l = labels.indexOf(example.label);
    docs[l] += 1;
    for (const token of tokens(example.text)) counts[l][index.get(token)!] += 1;
  }
  const logPriors = docs.map((n) => Math.log(n / examples.length));
  const totals = counts.map((row) => row.reduce((a, b) => a + b, 0) + vocabulary.length);
  return {
    version,
    labels,
    vocabulary,
    logPriors,
    logLikelihoods: counts.map((row, l) => row.map((c) => Math.log((c + 1) / totals[l]))),
    unknownLogLikelihood: totals.map((t) => Math.log(1 / t)),
  };
}

export function predict(model: Model, text: string): { label: string; score: number } {
  const index = new Map(model.vocabulary.map((w, i) => [w, i]));
  const scores = model.labels.map((_, l) => {
    let s = model.logPriors[l];
    for (const token of tokens(text)) {
      const w = index.get(token);
      if (w !== undefined) s += model.logLikelihoods[l][w];
    }
    return s;
  });
  const max = Math.max(...scores);
  const exp = scores.map((s) => Math.exp(s - max));
  const sum = exp.reduce((a, b) => a + b, 0);
  const best = scores.indexOf(max);
  return { label: model.labels[best], score: exp[best] / sum };
}

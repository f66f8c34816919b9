/**
 * K-fold cross-validation as the Doppel seed runs it: one function mapped over the folds, in parallel,
 * then a summary. `npx tsx caller.ts` after `sls deploy` (any stage; `--stage local` needs no cloud).
 */
import { trainFold } from './generated/client';

async function main(): Promise<void> {
  const k = Number(process.env.K ?? 5);
  const started = Date.now();
  const folds = await trainFold.map(Array.from({ length: k }, (_, fold) => ({ fold, k, seed: 2026 })), { concurrency: k });
  for (const f of folds) console.log(`fold ${f.fold}: accuracy ${(f.accuracy * 100).toFixed(1)}%  log-loss ${f.logLoss.toFixed(3)}  (${f.trainedOn} train / ${f.testedOn} test)`);
  const mean = folds.reduce((s, f) => s + f.accuracy, 0) / k;
  const sd = Math.sqrt(folds.reduce((s, f) => s + (f.accuracy - mean) ** 2, 0) / (k - 1));
  console.log(`${k}-fold accuracy: ${(mean * 100).toFixed(1)}% ± ${(sd * 100).toFixed(1)}  in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});

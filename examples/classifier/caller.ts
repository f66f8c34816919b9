/**
 * Trains the classifier via spawn, then calls it through the generated typed client:
 * `npx tsx caller.ts` after `sls deploy --stage local`.
 */
import { classify, isRemoteError, train } from './generated/client';

async function main(): Promise<void> {
  const call = await train.spawn({ dataset: 'jobs-2026' });
  console.log(`train spawned: ${call.id.slice(-12)} (${await call.status()})`);
  const trained = await call.get({ timeout: 120_000 });
  console.log(`trained ${trained.version}: ${trained.trainedOn} rows, held-out accuracy ${(trained.accuracy * 100).toFixed(1)}%`);

  const one = await classify.remote({ text: 'senior data engineer' });
  console.log(`remote: "senior data engineer" -> ${one.label} (${one.score.toFixed(3)})`);

  const texts = ['icu registered nurse', 'react frontend developer', 'cdl truck driver long haul', 'high school math teacher', 'tax accountant', 'saas account executive'];
  const many = await classify.map(texts.map((text) => ({ text })), { concurrency: 4 });
  many.forEach((result, i) => console.log(`map: "${texts[i]}" -> ${result.label} (${result.score.toFixed(3)})`));

  try {
    await classify.remote({ text: 42 } as unknown as { text: string });
  } catch (error) {
    if (!isRemoteError(error)) throw error;
    console.log(`bad input rejected: ${error.type} at ${error.path}: ${error.message}`);
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});

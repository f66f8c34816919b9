/**
 * Embeds a few documents and a query through the generated client and ranks the documents by cosine
 * similarity. `npx tsx caller.ts` after `sls deploy` (`--stage local` needs no cloud).
 */
import { embed } from './generated/client';

const documents = [
  'GPU inference on Kubernetes with autoscaling',
  'A recipe for sourdough bread with a long fermentation',
  'Serving embedding models behind an internal service',
  'Training classifiers on labelled job descriptions',
];

async function main(): Promise<void> {
  const query = process.argv[2] ?? 'embedding service on kubernetes';
  const [{ vectors: docs }, { vectors: [q] }] = await Promise.all([embed.remote({ texts: documents }), embed.remote({ texts: [query] })]);
  const dot = (a: Float32Array, b: Float32Array): number => a.reduce((sum, v, i) => sum + v * b[i], 0);
  const ranked = docs.map((v, i) => ({ text: documents[i], score: dot(v, q) })).sort((a, b) => b.score - a.score);
  console.log(`query: ${query}`);
  for (const r of ranked) console.log(`  ${r.score.toFixed(3)}  ${r.text}`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});

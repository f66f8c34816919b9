/**
 * The handler both servers serve: a small CPU-light "classifier" that tokenises the text and scores it
 * against fixed keyword lists. Shared so the shim and the Fastify endpoint do exactly the same work.
 */

export interface ClassifyInput {
  readonly text: string;
}

export interface ClassifyOutput {
  readonly label: string;
  readonly confidence: number;
  readonly scores: Record<string, number>;
  readonly tokens: number;
}

/** JSON Schema of the input, given to the shim (ajv) and to Fastify's route schema alike. */
export const inputSchema = {
  type: 'object',
  properties: { text: { type: 'string' } },
  required: ['text'],
  additionalProperties: false,
} as const;

const KEYWORDS: Record<string, readonly string[]> = {
  billing: ['invoice', 'refund', 'charge', 'charged', 'payment', 'price', 'bill', 'card', 'subscription', 'twice'],
  bug: ['error', 'crash', 'crashes', 'broken', 'fails', 'bug', 'exception', 'freezes', 'slow', 'blank'],
  praise: ['great', 'love', 'excellent', 'thanks', 'awesome', 'fast', 'helpful', 'perfect', 'smooth'],
  account: ['login', 'password', 'account', 'email', 'reset', 'locked', 'username', 'sign', 'two-factor'],
};

const LABELS = Object.keys(KEYWORDS);
const LABEL_OF = new Map<string, string>(LABELS.flatMap((label) => KEYWORDS[label].map((word) => [word, label] as const)));

const round3 = (x: number): number => Math.round(x * 1000) / 1000;

export function classify(input: ClassifyInput): ClassifyOutput {
  const tokens = input.text.toLowerCase().split(/[^a-z0-9'-]+/).filter((t) => t.length > 0);
  const counts: Record<string, number> = {};
  for (const label of LABELS) counts[label] = 0;
  for (const token of tokens) {
    const label = LABEL_OF.get(token);
    if (label) counts[label] += 1;
  }
  let best = 'other';
  let hits = 0;
  let total = 0;
  for (const label of LABELS) {
    total += counts[label];
    if (counts[label] > hits) [best, hits] = [label, counts[label]];
  }
  const scores: Record<string, number> = {};
  for (const label of LABELS) scores[label] = round3(counts[label] / Math.max(1, tokens.length));
  return { label: best, confidence: round3(total === 0 ? 0 : hits / total), scores, tokens: tokens.length };
}

/** Inputs the load generator cycles through. */
export const SAMPLE_INPUTS: readonly ClassifyInput[] = [
  { text: 'I was charged twice for my subscription this month, please refund the second payment on my card.' },
  { text: 'The app crashes with an error every time I open the settings page, and the screen goes blank.' },
  { text: 'Great update, thanks! The new editor is fast and smooth, I love it.' },
  { text: 'I cannot sign in: the login page says my account is locked and the password reset email never arrives.' },
  { text: 'Where can I find the invoice for last year? The price on the bill looks different from the quote.' },
  { text: 'Hello, just wondering whether you ship to Norway and how long delivery usually takes.' },
];

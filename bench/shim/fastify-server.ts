/**
 * Child process: the hand-written layer, a Fastify `POST /predict` that checks the body with Fastify's own
 * schema validation and replies with the classifier's output, on 127.0.0.1 and a free port, which it
 * reports to the parent.
 */
import Fastify from 'fastify';
import { reportToParent } from './child';
import { classify, inputSchema, type ClassifyInput } from './classifier';

async function start(): Promise<void> {
  // Reject (not strip) unknown properties and do not coerce types, so both servers accept the same inputs.
  const app = Fastify({ logger: false, ajv: { customOptions: { removeAdditional: false, coerceTypes: false } } });
  app.post<{ Body: ClassifyInput }>('/predict', { schema: { body: inputSchema } }, async (req) => classify(req.body));
  await app.listen({ port: 0, host: '127.0.0.1' });
  reportToParent((app.server.address() as { port: number }).port);
}

start().catch((error: unknown) => {
  process.stderr.write(`fastify-server: ${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});

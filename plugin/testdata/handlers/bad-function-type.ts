import { fn } from 'serverless-gpu/runtime';

export const takesCallback = fn({}, async (input: { onDone: () => void }) => input.onDone());

import { fn } from 'serverless-gpu/runtime';

export const broken = fn({ gpu: { type: 'L4', count: 0 }, timeout: 'soon' }, async () => 1);

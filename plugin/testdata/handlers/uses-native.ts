import { fn } from 'serverless-gpu/runtime';
// A GPU library that is not installed here: reading the annotation must not need it.
import * as ort from 'onnxruntime-node';

const session = ort.InferenceSession;

export const infer = fn({ gpu: 'L4', concurrency: 2 }, async (input: { x: number }) => ({ y: input.x * 2, has: Boolean(session) }));

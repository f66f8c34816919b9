/** For tests: a complete FunctionSpec — an L4 function `embed` of `image-search` on Cloud Run — to override. */
import type { FunctionSpec } from './spec';

export function specFixture(overrides: Partial<FunctionSpec> = {}): FunctionSpec {
  return {
    name: 'embed',
    service: 'image-search',
    stage: 'dev',
    file: '/srv/image-search/src/embed.ts',
    relFile: 'src/embed.ts',
    exportName: 'embed',
    target: 'cloudrun',
    gpu: { type: 'L4', count: 1 },
    cpu: undefined,
    memoryMiB: undefined,
    minInstances: 0,
    maxInstances: 5,
    concurrency: 1,
    timeoutMs: 300_000,
    retries: 0,
    env: {},
    secrets: [],
    image: undefined,
    weights: undefined,
    invokers: [],
    public: false,
    ...overrides,
  };
}

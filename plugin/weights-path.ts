/**
 * Where a function reads its weights at run time: a folder on this machine for the local target, the
 * mount (or fetch) point inside the container for the others.
 */
import path from 'node:path';
import type { ServiceConfig } from './config';
import type { FunctionSpec } from './spec';

export const CONTAINER_WEIGHTS_PATH = '/weights';

export function weightsPath(config: ServiceConfig, spec: FunctionSpec): string {
  if (spec.target !== 'local') return CONTAINER_WEIGHTS_PATH;
  if (!spec.weights) return path.join(config.serviceDir, '.serverless-gpu', 'weights', '_none');
  if (spec.weights.source) return path.resolve(config.serviceDir, spec.weights.source);
  return path.join(config.serviceDir, '.serverless-gpu', 'weights', spec.weights.prefix);
}

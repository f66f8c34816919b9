/**
 * Providers by target, each loaded only when a function uses it (so a local-only service never loads a
 * cloud SDK or Pulumi package).
 */
import { ProviderError } from '../plugin/errors';
import type { Target } from '../runtime-shim/types';
import type { Provider } from './types';

const PROVIDERS: Partial<Record<Target, () => Promise<Provider>>> = {
  local: async () => (await import('./local')).localProvider,
};

export async function loadProvider(target: Target): Promise<Provider> {
  const load = PROVIDERS[target];
  if (!load) {
    throw new ProviderError(
      'TARGET_NOT_AVAILABLE',
      `target "${target}" cannot be deployed by this version of serverless-gpu yet; use target "local"`,
    );
  }
  return load();
}

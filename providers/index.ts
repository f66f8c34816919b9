/**
 * Providers by target, each loaded only when a function uses it (so a local-only service never loads a
 * cloud SDK or Pulumi package).
 */
import { ProviderError } from '../plugin/errors';
import type { Target } from '../runtime-shim/types';
import type { Provider } from './types';

const cloud = async (): Promise<Provider> => (await import('./pulumi/stack')).pulumiProvider;

/** The cloud targets share one provider: one Pulumi stack per service and stage holds them all. */
const PROVIDERS: Record<Target, () => Promise<Provider>> = {
  local: async () => (await import('./local')).localProvider,
  cloudrun: cloud,
  gke: cloud,
  batch: cloud,
};

export async function loadProvider(target: Target): Promise<Provider> {
  const load = PROVIDERS[target];
  if (!load) throw new ProviderError('UNKNOWN_TARGET', `unknown target "${target}"`);
  return load();
}

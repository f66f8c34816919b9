/**
 * The plugin's few typed errors. Each names where the problem is (a config path, a file, a function);
 * the plugin turns them into the framework's error in one place, at the hook boundary.
 */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(
    /** Where, e.g. `functions.classify.gpu.count` or `src/classify.ts: classify.timeout`. */
    readonly path: string,
    message: string,
  ) {
    super(`${path}: ${message}`);
  }
}

export class BuildError extends Error {
  override readonly name = 'BuildError';
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export class ProviderError extends Error {
  override readonly name = 'ProviderError';
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export const isConfigError = (error: unknown): error is ConfigError => error instanceof ConfigError;
export const isBuildError = (error: unknown): error is BuildError => error instanceof BuildError;
export const isProviderError = (error: unknown): error is ProviderError => error instanceof ProviderError;

/** The framework's error code for one of ours, so `sls` prints a clean message without a stack. */
export function errorCode(error: unknown): string | undefined {
  if (isConfigError(error)) return 'GPU_CONFIG_ERROR';
  if (isBuildError(error)) return `GPU_BUILD_${error.code}`;
  if (isProviderError(error)) return `GPU_PROVIDER_${error.code}`;
  return undefined;
}

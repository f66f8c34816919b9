/**
 * The manifest the plugin writes beside each function's bundle; the shim's entry point reads it.
 * Local processes and containers both start from it, so they honour the same contract.
 */
export interface ShimManifest {
  readonly v: 1;
  readonly service: string;
  readonly function: string;
  /** Export name of the annotated function in the bundle. */
  readonly export: string;
  /** Bundle file, relative to the manifest's folder. */
  readonly bundle: string;
  readonly contract: { readonly input: object; readonly output: object };
  readonly concurrency: number;
  readonly timeoutMs: number;
  /** Where weights are readable at run time (a mount, or a local folder). */
  readonly weightsPath: string;
}

export const MANIFEST_FILE = 'manifest.json';

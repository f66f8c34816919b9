/**
 * One provider per target, behind this interface. A provider turns compiled functions into something
 * running and says how callers reach it; nothing outside `providers/` declares a cloud resource.
 */
import type { ServiceConfig } from '../plugin/config';
import type { FunctionSpec } from '../plugin/spec';
import type { FunctionArtifact } from '../plugin/bundle';
import type { DeployedFunction } from '../runtime-shim/client';
import type { Target } from '../runtime-shim/types';

/** What the plugin hands a provider: the framework's logging, nothing else of it. */
export interface ProviderIO {
  info(message: string): void;
  notice(message: string): void;
  warning(message: string): void;
  verbose(message: string): void;
  /** A progress line that updates in place; `remove()` when done. */
  progress(name: string, message: string): { update(message: string): void; remove(): void };
}

export interface CompiledFunction {
  readonly spec: FunctionSpec;
  readonly artifact: FunctionArtifact;
  /** The pushed image, for targets that run containers. */
  readonly image?: { readonly reference: string };
}

export interface DeployRequest {
  readonly config: ServiceConfig;
  readonly functions: readonly CompiledFunction[];
  readonly io: ProviderIO;
}

export interface DeployedService {
  readonly functions: Readonly<Record<string, DeployedFunction>>;
}

export interface FunctionStatus {
  readonly name: string;
  readonly target: Target;
  readonly endpoints: readonly string[];
  /** e.g. `2/2 instances ready`. */
  readonly state: string;
}

export interface Provider {
  /** For messages: `local`, `pulumi`. */
  readonly name: string;
  deploy(request: DeployRequest): Promise<DeployedService>;
  /** What is deployed now, or undefined when nothing is. */
  info(config: ServiceConfig): Promise<readonly FunctionStatus[] | undefined>;
  /** The deployed endpoints, for the client generator and `sls invoke`. */
  deployed(config: ServiceConfig): Promise<DeployedService | undefined>;
  logs(config: ServiceConfig, functionName: string): Promise<string>;
  remove(config: ServiceConfig, io: ProviderIO): Promise<void>;
}

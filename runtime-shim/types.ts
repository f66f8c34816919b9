/**
 * The public surface handlers see: options of `fn`/`cls`, the context a call gets, and the function
 * value an annotation returns. See README.md "Annotation reference".
 */
import type { Image } from './image';

/** Where a function runs. `local` runs it on this machine with the same container contract. */
export type Target = 'cloudrun' | 'gke' | 'batch' | 'local';
export const TARGETS: readonly Target[] = ['cloudrun', 'gke', 'batch', 'local'];

/** A GPU request: `'L4'` is shorthand for `{ type: 'L4', count: 1 }`. */
export type GpuOption = string | { readonly type: string; readonly count?: number };

export interface WeightsOption {
  /** Object-store prefix under `provider.weights.bucket`, e.g. `classifier/v3`. */
  readonly prefix: string;
  /** Local folder synced to the prefix at deploy, relative to the service folder. */
  readonly source?: string;
}

/** Options of an annotated function. Every field can be overridden per stage in serverless.yml. */
export interface FunctionOptions {
  /** Where it runs; default `provider.target`. */
  readonly target?: Target;
  /** GPU type and count, e.g. `'L4'` or `{ type: 'L4', count: 2 }`. */
  readonly gpu?: GpuOption;
  /** vCPUs per container, e.g. `4`. */
  readonly cpu?: number;
  /** Memory per container: `'16Gi'`, `'512Mi'` or a number of MiB. */
  readonly memory?: string | number;
  /** Containers kept running at all times (keep warm). */
  readonly minInstances?: number;
  /** Upper bound of containers. */
  readonly maxInstances?: number;
  /** Calls one container serves at once. */
  readonly concurrency?: number;
  /** Deadline of one call: `'60s'`, `'15m'`, `'2h'` or seconds as a number. */
  readonly timeout?: string | number;
  /** Times a failed job is retried (batch). */
  readonly retries?: number;
  /** Environment variables set in the container. */
  readonly env?: Readonly<Record<string, string>>;
  /** Names of secrets exposed as environment variables. */
  readonly secrets?: readonly string[];
  /** The container image: an `Image` built from its spec. */
  readonly image?: Image;
  /** Model weights visible at `ctx.weights.path`. */
  readonly weights?: WeightsOption;
  /** IAM members allowed to call it on Cloud Run, e.g. `serviceAccount:api@acme.iam.gserviceaccount.com`. */
  readonly invokers?: readonly string[];
  /** Callable without credentials (Cloud Run `allUsers`). Default false. */
  readonly public?: boolean;
}

/** What a call sees besides its input. */
export interface Context {
  /** The function's name as declared in serverless.yml. */
  readonly functionName: string;
  /** A unique id of this call. */
  readonly callId: string;
  /** Aborted when the call passes its deadline or the container shuts down. */
  readonly signal: AbortSignal;
  /** Where the function's weights are readable (mounted or fetched). */
  readonly weights: { readonly path: string };
  /** Log a line with the call id. */
  log(message: string): void;
}

/** The context `setup` sees: no call yet. */
export type SetupContext = Omit<Context, 'callId' | 'signal'>;

export type Handler<I, O> = (input: I, ctx: Context) => O | Promise<O>;

/** A class whose `setup` runs once per container before it serves and whose `handle` serves each call. */
export interface ServiceInstance<I, O> {
  setup?(ctx: SetupContext): unknown;
  handle(input: I, ctx: Context): O | Promise<O>;
}

export const GPU_FUNCTION = Symbol.for('serverless-gpu.function');

/** The value an annotation returns; the plugin finds it by its export name. */
export interface GpuFunction<I, O> {
  readonly [GPU_FUNCTION]: true;
  readonly options: FunctionOptions;
  /** Creates the container's instance: `setup` then any number of `invoke`. */
  instantiate(): {
    setup(ctx: SetupContext): Promise<void>;
    invoke(input: I, ctx: Context): Promise<O>;
  };
}

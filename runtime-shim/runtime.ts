/**
 * `serverless-gpu/runtime`: what handler files import.
 *
 *   export const classify = fn({ gpu: 'L4', minInstances: 1 }, async (input: { text: string }, ctx) => ...);
 *   export const embed = cls({ gpu: 'L4' }, class { async setup(ctx) { ... } async handle(input, ctx) { ... } });
 */
import {
  GPU_FUNCTION,
  type Context,
  type FunctionOptions,
  type GpuFunction,
  type Handler,
  type ServiceInstance,
  type SetupContext,
} from './types';

export { Image } from './image';
export type { ImageStep } from './image';
export type {
  Context,
  FunctionOptions,
  GpuFunction,
  GpuOption,
  Handler,
  ServiceInstance,
  SetupContext,
  Target,
  WeightsOption,
} from './types';

function checkOptions(where: string, options: unknown): FunctionOptions {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new TypeError(`${where}: the first argument must be an options object`);
  }
  return options as FunctionOptions;
}

/** Annotates a plain handler: each call runs `handler(input, ctx)`. */
export function fn<I, O>(options: FunctionOptions, handler: Handler<I, O>): GpuFunction<I, O> {
  checkOptions('fn()', options);
  if (typeof handler !== 'function') throw new TypeError('fn(): the second argument must be the handler function');
  return {
    [GPU_FUNCTION]: true,
    options,
    instantiate: () => ({
      setup: async () => undefined,
      invoke: async (input: I, ctx: Context) => handler(input, ctx),
    }),
  };
}

/**
 * Annotates a class: one instance per container, `setup(ctx)` once before the container reports ready
 * (load a model once), then `handle(input, ctx)` for every call.
 */
export function cls<I, O>(options: FunctionOptions, Service: new () => ServiceInstance<I, O>): GpuFunction<I, O> {
  checkOptions('cls()', options);
  if (typeof Service !== 'function') throw new TypeError('cls(): the second argument must be a class');
  if (typeof Service.prototype?.handle !== 'function') {
    throw new TypeError(`cls(): class ${Service.name || '(anonymous)'} must have a handle(input, ctx) method`);
  }
  return {
    [GPU_FUNCTION]: true,
    options,
    instantiate: () => {
      const instance = new Service();
      return {
        setup: async (ctx: SetupContext) => {
          if (typeof instance.setup === 'function') await instance.setup(ctx);
        },
        invoke: async (input: I, ctx: Context) => instance.handle(input, ctx),
      };
    },
  };
}

/** True for a value made by `fn` or `cls` (from any copy of this module). */
export function isGpuFunction(value: unknown): value is GpuFunction<unknown, unknown> {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[GPU_FUNCTION] === true;
}

/**
 * Input validation against a function's contract (JSON Schema draft-07 made by the plugin), with ajv.
 * Typed arrays are matched by the `x-typedArray` keyword, since JSON Schema has no type for them.
 */
import Ajv, { type ValidateFunction } from 'ajv';

export interface ValidationFailure {
  /** JSON pointer into the input, e.g. `/items/2/text`; empty for the input itself. */
  readonly path: string;
  readonly message: string;
}

export type Validator = (value: unknown) => ValidationFailure | undefined;

function newAjv(): Ajv {
  const ajv = new Ajv({ allErrors: false, strict: false });
  ajv.addKeyword({
    keyword: 'x-typedArray',
    schemaType: 'string',
    validate: (name: string, data: unknown) =>
      ArrayBuffer.isView(data) && (data.constructor.name === name || (name === 'Uint8Array' && Buffer.isBuffer(data))),
    errors: false,
  });
  return ajv;
}

let shared: Ajv | undefined;

/** Compiles a schema once; the returned function is what runs per call. */
export function compileValidator(schema: object): Validator {
  shared ??= newAjv();
  const check: ValidateFunction = shared.compile(schema);
  return (value) => {
    if (check(value)) return undefined;
    const error = check.errors?.[0];
    if (!error) return { path: '', message: 'input is invalid' };
    let path = error.instancePath;
    let message = error.message ?? 'is invalid';
    if (error.keyword === 'required') {
      path = `${path}/${(error.params as { missingProperty: string }).missingProperty}`;
      message = 'is required';
    } else if (error.keyword === 'additionalProperties') {
      path = `${path}/${(error.params as { additionalProperty: string }).additionalProperty}`;
      message = 'is not a known property';
    } else if (error.keyword === 'x-typedArray') {
      message = `must be a ${error.schema as string}`;
    } else if (error.keyword === 'enum' || error.keyword === 'const') {
      const allowed = (error.params as { allowedValues?: unknown[]; allowedValue?: unknown }).allowedValues ?? [
        (error.params as { allowedValue?: unknown }).allowedValue,
      ];
      message = `must be one of ${allowed.map((v) => JSON.stringify(v)).join(', ')}`;
    }
    return { path, message: `input${path ? ` at ${path}` : ''} ${message}` };
  };
}

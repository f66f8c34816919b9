import assert from 'node:assert/strict';
import path from 'node:path';
import { readContracts, type ContractRequest } from './contract';
import { ConfigError } from './errors';
import { TESTDATA } from './test-helpers';

const KITCHEN = path.join(TESTDATA, 'handlers', 'kitchen.ts');

function contractOf(file: string, exportName: string) {
  const request: ContractRequest = { file, exportName, functionName: exportName };
  return readContracts([request], TESTDATA).get(request)!;
}

describe('contracts', () => {
  const embed = contractOf(KITCHEN, 'embed');
  const input = embed.input as { properties: Record<string, Record<string, unknown>>; required: string[]; additionalProperties: boolean };

  it('lists required and optional properties of an input interface', () => {
    assert.deepEqual(input.required.sort(), ['flag', 'nested', 'pair', 'tags', 'texts', 'weights']);
    assert.equal(input.additionalProperties, false);
  });

  it('maps primitives, arrays, tuples and string-literal unions', () => {
    assert.deepEqual(input.properties.texts, { type: 'array', items: { type: 'string' } });
    assert.deepEqual(input.properties.mode, { enum: ['fast', 'accurate'] });
    assert.deepEqual(input.properties.pair, { type: 'array', items: [{ type: 'string' }, { type: 'number' }], minItems: 2, maxItems: 2 });
    assert.deepEqual(input.properties.flag, { type: 'boolean' });
  });

  it('maps typed arrays, dates, index signatures and nullable nested values', () => {
    assert.deepEqual(input.properties.image, { description: 'Raw bytes of an image.', 'x-typedArray': 'Uint8Array' });
    assert.deepEqual(input.properties.weights, { 'x-typedArray': 'Float32Array' });
    assert.deepEqual(input.properties.when, { type: 'string', format: 'date-time' });
    assert.deepEqual(input.properties.tags, { type: 'object', properties: {}, additionalProperties: { type: 'number' } });
    const nested = input.properties.nested as { properties: { deep: { properties: { value: unknown } } } };
    assert.deepEqual(nested.properties.deep.properties.value, { anyOf: [{ type: 'null' }, { type: 'number' }] });
  });

  it('unwraps the Promise of an async handler’s output', () => {
    const output = embed.output as { properties: Record<string, unknown> };
    assert.deepEqual(output.properties.vectors, { type: 'array', items: { 'x-typedArray': 'Float32Array' } });
    assert.deepEqual(output.properties.count, { type: 'number' });
  });

  it('reads the types of a cls() handle method', () => {
    const shout = contractOf(KITCHEN, 'shout');
    assert.equal(shout.input.type, 'string');
    assert.equal(shout.output.type, 'string');
  });

  it('maps a handler returning nothing to null', () => {
    assert.equal(contractOf(KITCHEN, 'nothing').output.type, 'null');
  });

  it('rejects a function in the input, naming the file, export and property', () => {
    assert.throws(
      () => contractOf(path.join(TESTDATA, 'handlers', 'bad-function-type.ts'), 'takesCallback'),
      (error: unknown) =>
        error instanceof ConfigError &&
        /handlers\/bad-function-type\.ts: export "takesCallback"/.test(error.message) &&
        /\/onDone is a function/.test(error.message),
    );
  });

  it('rejects an export that was not made by fn() or cls()', () => {
    assert.throws(() => contractOf(KITCHEN, 'notAnnotated'), /is not a function made by fn\(\) or cls\(\)/);
  });
});

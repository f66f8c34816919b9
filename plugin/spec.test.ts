import assert from 'node:assert/strict';
import { resolveSpecs } from './compile';
import { ConfigError } from './errors';
import { SPEC_DEFAULTS } from './spec';
import { fixtureConfig } from './test-helpers';

async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  assert.fail('expected a rejection');
}

describe('function specs', () => {
  it('reads every option of the annotation', async () => {
    const [{ spec }] = await resolveSpecs(fixtureConfig({ embed: { handler: 'handlers/kitchen.embed' } }));
    assert.deepEqual(spec.gpu, { type: 'L4', count: 2 });
    assert.equal(spec.minInstances, 1);
    assert.equal(spec.maxInstances, 4);
    assert.equal(spec.concurrency, 3);
    assert.equal(spec.timeoutMs, 90_000);
    assert.equal(spec.memoryMiB, 16_384);
    assert.equal(spec.cpu, 8);
    assert.equal(spec.image?.steps[0].op, 'from');
    assert.match(spec.image?.hash ?? '', /^[0-9a-f]{64}$/);
  });

  it('lets serverless.yml override the annotation per stage', async () => {
    const [{ spec }] = await resolveSpecs(
      fixtureConfig({ embed: { handler: 'handlers/kitchen.embed', minInstances: 0, gpu: 'H100', timeout: '2m' } }),
    );
    assert.equal(spec.minInstances, 0);
    assert.deepEqual(spec.gpu, { type: 'H100', count: 1 });
    assert.equal(spec.timeoutMs, 120_000);
    assert.equal(spec.maxInstances, 4, 'fields not overridden keep the annotation value');
  });

  it('fills defaults for what neither sets, and takes the target from the provider', async () => {
    const [{ spec }] = await resolveSpecs(fixtureConfig({ nothing: { handler: 'handlers/kitchen.nothing' } }));
    assert.equal(spec.target, 'local');
    assert.equal(spec.minInstances, SPEC_DEFAULTS.minInstances);
    assert.equal(spec.concurrency, SPEC_DEFAULTS.concurrency);
    assert.equal(spec.timeoutMs, SPEC_DEFAULTS.timeoutMs);
    assert.equal(spec.gpu, undefined);
  });

  it('reads a numeric timeout as seconds', async () => {
    const [{ spec }] = await resolveSpecs(fixtureConfig({ shout: { handler: 'handlers/kitchen.shout' } }));
    assert.equal(spec.timeoutMs, 5_000);
  });

  it('rejects minInstances above maxInstances, naming the function and where the value came from', async () => {
    const error = await rejection(resolveSpecs(fixtureConfig({ embed: { handler: 'handlers/kitchen.embed', minInstances: 9 } })));
    assert.ok(error instanceof ConfigError);
    assert.match(error.message, /functions\.embed\.minInstances/);
    assert.match(error.message, /minInstances \(9\) must not exceed maxInstances \(4\)/);
  });

  it('names the handler file, the export and the field of a bad annotation value', async () => {
    const error = await rejection(resolveSpecs(fixtureConfig({ broken: { handler: 'handlers/bad-annotation.broken' } })));
    assert.ok(error instanceof ConfigError);
    assert.match(error.message, /handlers\/bad-annotation\.ts: broken/);
    assert.match(error.message, /gpu/);
    assert.match(error.message, /timeout must be a duration/);
  });

  it('says which exports are annotated when the handler names another', async () => {
    const error = await rejection(resolveSpecs(fixtureConfig({ x: { handler: 'handlers/kitchen.notAnnotated' } })));
    assert.match(error.message, /functions\.x\.handler: handlers\/kitchen\.ts has no export "notAnnotated" made by fn\(\) or cls\(\)/);
    assert.match(error.message, /annotated exports: embed, nothing, shout/);
  });

  it('names the handler field when the file does not exist', async () => {
    const error = await rejection(resolveSpecs(fixtureConfig({ x: { handler: 'handlers/missing.x' } })));
    assert.match(error.message, /functions\.x\.handler: no file handlers\/missing\.ts/);
  });

  it('reads annotations without the handler’s third-party modules installed', async () => {
    const [{ spec }] = await resolveSpecs(fixtureConfig({ infer: { handler: 'handlers/uses-native.infer' } }));
    assert.deepEqual(spec.gpu, { type: 'L4', count: 1 });
    assert.equal(spec.concurrency, 2);
  });
});

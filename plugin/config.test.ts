import assert from 'node:assert/strict';
import { readServiceConfig, type RawService } from './config';
import { ConfigError } from './errors';

function raw(overrides: Partial<RawService> = {}): RawService {
  return {
    service: 'svc',
    provider: { name: 'gpu', target: 'local', stage: 'dev' },
    functions: { classify: { handler: 'src/classify.classify', minInstances: 1 } },
    ...overrides,
  };
}

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${String(error)}`);
    return error;
  }
  assert.fail('expected a ConfigError');
}

describe('readServiceConfig', () => {
  it('reads the handler and keeps the per-stage overrides of each function', () => {
    const config = readServiceConfig(raw(), { serviceDir: '/svc' });
    assert.equal(config.functions[0].handler, 'src/classify.classify');
    assert.deepEqual(config.functions[0].overrides, { minInstances: 1 });
    assert.equal(config.provider.target, 'local');
    assert.equal(config.client.out, '/svc/generated/client');
  });

  it('names an unknown function option (a typo) with its path', () => {
    const error = configError(() =>
      readServiceConfig(raw({ functions: { classify: { handler: 'src/c.classify', minInstance: 1 } } }), { serviceDir: '/svc' }),
    );
    assert.match(error.message, /Unknown option in functions\.classify: "minInstance"/);
  });

  it('names an unknown key in custom.gpu', () => {
    const error = configError(() =>
      readServiceConfig(raw({ custom: { gpu: { acclerator: 'L4' } } }), { serviceDir: '/svc' }),
    );
    assert.match(error.message, /Unknown option in custom\.gpu: "acclerator"/);
  });

  it('names the field of a wrongly typed value', () => {
    const error = configError(() =>
      readServiceConfig(raw({ functions: { classify: { handler: 'src/c.classify', gpu: { type: 'L4', count: 0 } } } }), {
        serviceDir: '/svc',
      }),
    );
    assert.match(error.message, /functions\.classify\.gpu/);
  });

  it('explains the expected format of a bad duration', () => {
    const error = configError(() =>
      readServiceConfig(raw({ functions: { classify: { handler: 'src/c.classify', timeout: '1 minute' } } }), { serviceDir: '/svc' }),
    );
    assert.match(error.message, /functions\.classify\.timeout must be a duration like "60s"/);
  });

  it('rejects a target that does not exist, listing the ones that do', () => {
    const error = configError(() => readServiceConfig(raw({ provider: { name: 'gpu', target: 'lambda' } }), { serviceDir: '/svc' }));
    assert.match(error.message, /provider\.target must be one of "cloudrun", "gke", "batch", "local"/);
  });

  it('requires a handler on every function', () => {
    const error = configError(() => readServiceConfig(raw({ functions: { classify: { minInstances: 1 } } }), { serviceDir: '/svc' }));
    assert.match(error.message, /functions\.classify\.handler is required/);
  });

  it('takes the stage from the command line over the provider', () => {
    assert.equal(readServiceConfig(raw(), { serviceDir: '/svc', stage: 'prod' }).stage, 'prod');
    assert.equal(readServiceConfig(raw(), { serviceDir: '/svc' }).stage, 'dev');
  });
});

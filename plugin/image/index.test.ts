import assert from 'node:assert/strict';
import { readServiceConfig, type ServiceConfig } from '../config';
import { ConfigError } from '../errors';
import type { FunctionSpec } from '../spec';
import { specFixture } from '../spec-fixture';
import { serviceRepository } from './index';

function config(service: string, registry: string | undefined): ServiceConfig {
  return readServiceConfig(
    {
      service,
      provider: { name: 'gpu', target: 'cloudrun', ...(registry === undefined ? {} : { registry }) },
      functions: { classify: { handler: 'src/classify.classify' } },
    },
    { serviceDir: '/svc', stage: 'dev' },
  );
}

const SPEC: FunctionSpec = specFixture({
  name: 'classify',
  service: 'classifier',
  file: '/svc/src/classify.ts',
  relFile: 'src/classify.ts',
  exportName: 'classify',
  gpu: undefined,
});

describe('serviceRepository', () => {
  it('splits provider.registry into the host and a repository ending with the service', () => {
    assert.deepEqual(serviceRepository(config('classifier', 'us-central1-docker.pkg.dev/acme/ml'), SPEC), {
      registry: 'us-central1-docker.pkg.dev',
      repository: 'acme/ml/classifier',
    });
  });

  it('uses the service as the repository when provider.registry is only a host', () => {
    assert.deepEqual(serviceRepository(config('classifier', '127.0.0.1:5000'), SPEC), { registry: '127.0.0.1:5000', repository: 'classifier' });
  });

  it('ignores a scheme and trailing slashes, and lowercases the service', () => {
    assert.deepEqual(serviceRepository(config('Classifier', 'https://ghcr.io/acme/'), SPEC), { registry: 'ghcr.io', repository: 'acme/classifier' });
  });

  it('fails with a ConfigError naming provider.registry when it is missing', () => {
    assert.throws(
      () => serviceRepository(config('classifier', undefined), SPEC),
      (error: unknown) => error instanceof ConfigError && error.path === 'provider.registry' && /classify/.test(error.message) && /cloudrun/.test(error.message),
    );
  });
});

import assert from 'node:assert/strict';
import { deployedFromOutputs, ensurePulumiCli, stackEnv } from './stack';
import { readServiceConfig } from '../../plugin/config';
import { ProviderError } from '../../plugin/errors';

const config = (pulumi?: { backend?: string }) =>
  readServiceConfig({ service: 'svc', provider: { name: 'gpu', target: 'batch', pulumi }, functions: { f: { handler: 'a.f' } } }, { serviceDir: '/svc' });

describe('the Pulumi stack provider', () => {
  it('turns stack outputs into what the client needs per target', () => {
    const deployed = deployedFromOutputs({
      functions: {
        value: {
          classify: { target: 'cloudrun', url: 'https://classify-x.a.run.app', serviceName: 's', region: 'us-central1', project: 'p', payloadStore: 'gs://pb/classify/' },
          embed: { target: 'gke', address: 'http://embed.ns.svc.cluster.local', serviceName: 'embed', namespace: 'ns' },
          viaGateway: { target: 'gke', address: 'http://g.ns.svc.cluster.local', gateway: 'https://gw.example.com', serviceName: 'g', namespace: 'ns' },
          train: { target: 'batch', jobQueueArn: 'arn:q', jobDefinitionArn: 'arn:d', callBucket: 'b', callPrefix: 'calls/svc/dev/train/', region: 'us-east-1' },
        },
      },
    });
    assert.deepEqual(deployed.classify, { target: 'cloudrun', endpoints: ['https://classify-x.a.run.app'], auth: 'google-id-token', payloadStore: 'gs://pb/classify/' });
    assert.deepEqual(deployed.embed.endpoints, ['http://embed.ns.svc.cluster.local']);
    assert.deepEqual(deployed.viaGateway.endpoints, ['https://gw.example.com']);
    assert.deepEqual(deployed.train.batch, { region: 'us-east-1', jobQueue: 'arn:q', jobDefinition: 'arn:d', callBucket: 'b', callPrefix: 'calls/svc/dev/train/' });
  });

  it('takes the backend from PULUMI_BACKEND_URL over provider.pulumi.backend, else leaves the CLI its login', () => {
    assert.equal(stackEnv(config({ backend: 's3://state' }), { PULUMI_BACKEND_URL: 'gs://other' }).PULUMI_BACKEND_URL, 'gs://other');
    assert.equal(stackEnv(config({ backend: 's3://state' }), {}).PULUMI_BACKEND_URL, 's3://state');
    assert.equal(stackEnv(config(), {}).PULUMI_BACKEND_URL, undefined);
  });

  it('needs a passphrase for a file:// backend', () => {
    assert.throws(() => stackEnv(config({ backend: 'file:///state' }), {}), /PULUMI_CONFIG_PASSPHRASE/);
    assert.doesNotThrow(() => stackEnv(config({ backend: 'file:///state' }), { PULUMI_CONFIG_PASSPHRASE: '' }));
  });

  it('says what to install when no pulumi CLI answers', () => {
    assert.throws(
      () => ensurePulumiCli({ PATH: '/nonexistent' }),
      (error: unknown) => error instanceof ProviderError && error.code === 'PULUMI_CLI_MISSING' && /get\.pulumi\.com/.test(error.message),
    );
  });
});

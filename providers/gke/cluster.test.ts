import assert from 'node:assert/strict';
import * as pulumi from '@pulumi/pulumi';
import { mockPulumi, settle, valueOf, type PulumiMock } from '../pulumi/testing';
import { GkeCluster, type GkeClusterArgs } from './cluster';

const CLUSTER = 'gcp:container/cluster:Cluster';
const K8S_PROVIDER = 'pulumi:providers:kubernetes';

describe('GkeCluster', () => {
  let mock: PulumiMock;

  before(async () => {
    mock = await mockPulumi({ 'gcp:project': 'acme', 'gcp:region': 'us-central1' });
  });

  function cluster(name: string, args: Partial<GkeClusterArgs> = {}): GkeCluster {
    return new GkeCluster(name, { project: 'acme', region: 'us-central1', create: true, ...args });
  }

  function registered(type: string, name: string): Record<string, unknown> {
    const found = mock.ofType(type).filter((r) => r.name === name);
    assert.equal(found.length, 1, `one ${type} named ${name}`);
    return found[0].inputs;
  }

  /** The kubeconfig the cluster's Kubernetes provider got, which must reach the engine as a secret. */
  function kubeconfigOf(name: string): string {
    const input = registered(K8S_PROVIDER, name).kubeconfig as Record<string, unknown>;
    assert.equal(input[pulumi.runtime.specialSigKey], pulumi.runtime.specialSecretSig, 'kubeconfig is a secret');
    return String(input.value);
  }

  /** Constructing throws, and nothing at all reaches the engine. */
  async function assertRejected(build: () => unknown, message: RegExp): Promise<void> {
    await settle();
    const before = mock.resources.length;
    assert.throws(build, message);
    await settle();
    assert.equal(mock.resources.length, before);
  }

  describe('when creating a cluster', () => {
    it('creates a regional Autopilot cluster that can be destroyed, on the REGULAR channel', async () => {
      cluster('created-regional');
      await settle();
      const inputs = registered(CLUSTER, 'created-regional');
      assert.equal(inputs.location, 'us-central1');
      assert.equal(inputs.project, 'acme');
      assert.equal(inputs.enableAutopilot, true);
      assert.equal(inputs.deletionProtection, false);
      assert.deepEqual(inputs.releaseChannel, { channel: 'REGULAR' });
      assert.equal(inputs.name, undefined, 'autonamed unless a name is given');
    });

    it('names the cluster when a name is given', async () => {
      const created = cluster('created-named', { name: 'gpu-dev' });
      await settle();
      assert.equal(registered(CLUSTER, 'created-named').name, 'gpu-dev');
      assert.equal(await valueOf(created.clusterName), 'gpu-dev');
    });

    it('builds a secret kubeconfig from the new cluster that authenticates with gke-gcloud-auth-plugin', async () => {
      cluster('created-kubeconfig', { name: 'gpu-dev' });
      await settle();
      const kubeconfig = kubeconfigOf('created-kubeconfig');
      assert.match(kubeconfig, /server: https:\/\/203\.0\.113\.10\n/);
      assert.match(kubeconfig, new RegExp(`certificate-authority-data: ${Buffer.from('mock-ca').toString('base64')}\n`));
      assert.match(kubeconfig, /current-context: gke_acme_us-central1_gpu-dev\n/);
      assert.match(kubeconfig, /command: gke-gcloud-auth-plugin\n/);
      assert.match(kubeconfig, /provideClusterInfo: true\n/);
      // Provider inputs reach the engine JSON-encoded.
      assert.equal(registered(K8S_PROVIDER, 'created-kubeconfig').enableServerSideApply, 'true');
    });

    it('rejects a zone passed as location: Autopilot clusters are regional', async () => {
      await assertRejected(() => cluster('rejected-zone-location', { location: 'us-central1-a' }), /provider\.gke\.location.*"us-central1-a" is a zone.*regional.*"us-central1"/);
    });

    it('rejects a zone passed as region', async () => {
      await assertRejected(() => cluster('rejected-zone-region', { region: 'europe-west4-b' }), /provider\.gcp\.region.*"europe-west4-b" is a zone/);
    });
  });

  describe('when using an existing cluster', () => {
    it('creates no cluster and reads the named one', async () => {
      const existing = cluster('existing-read', { create: false, name: 'gpu-prod' });
      await settle();
      assert.equal(mock.ofType(CLUSTER).filter((r) => r.name === 'existing-read').length, 0);
      assert.equal(await valueOf(existing.clusterName), 'gpu-prod');
      const kubeconfig = kubeconfigOf('existing-read');
      assert.match(kubeconfig, /server: https:\/\/203\.0\.113\.20\n/);
      assert.match(kubeconfig, /current-context: gke_acme_us-central1_gpu-prod\n/);
    });

    it('accepts a zonal location for an existing cluster and uses it in the context', async () => {
      cluster('existing-zonal', { create: false, name: 'gpu-zonal', location: 'us-central1-a' });
      await settle();
      assert.match(kubeconfigOf('existing-zonal'), /current-context: gke_acme_us-central1-a_gpu-zonal\n/);
    });

    it('rejects using an existing cluster without its name', async () => {
      await assertRejected(() => cluster('rejected-no-name', { create: false }), /provider\.gke\.cluster/);
    });
  });

  it('exposes the project and its number for Workload Identity principals', async () => {
    const created = cluster('project-number');
    assert.equal(created.project, 'acme');
    assert.equal(await valueOf(created.projectNumber), '123456789012');
  });

  it('makes the Kubernetes provider a child of the component', async () => {
    const created = cluster('provider-child');
    await settle();
    const urn = await valueOf(created.provider.urn);
    assert.match(urn, /::serverless-gpu:gke:Cluster\$pulumi:providers:kubernetes::provider-child$/);
  });
});

import assert from 'node:assert/strict';
import * as pulumi from '@pulumi/pulumi';
import type { FunctionSpec } from '../../plugin/spec';
import { specFixture } from '../../plugin/spec-fixture';
import { mockPulumi, settle, valueOf, type PulumiMock } from '../pulumi/testing';
import { GkeCluster } from './cluster';
import { GkeFunction, gkeProblems, type GkeFunctionArgs } from './function';

const DEPLOYMENT = 'kubernetes:apps/v1:Deployment';
const SERVICE = 'kubernetes:core/v1:Service';
const SERVICE_ACCOUNT = 'kubernetes:core/v1:ServiceAccount';
const HPA = 'kubernetes:autoscaling/v2:HorizontalPodAutoscaler';
const BUCKET_MEMBER = 'gcp:storage/bucketIAMMember:BucketIAMMember';
const IMAGE = 'us-central1-docker.pkg.dev/acme/sgpu/embed@sha256:' + 'a'.repeat(64);

/** Every field of a FunctionSpec: an L4 function with weights, a secret and one env var. */
function fnSpec(overrides: Partial<FunctionSpec> = {}): FunctionSpec {
  return specFixture({
    service: 'acme-ml',
    file: '/srv/acme-ml/src/embed.ts',
    target: 'gke',
    maxInstances: 3,
    concurrency: 4,
    timeoutMs: 120_000,
    env: { LOG_LEVEL: 'debug' },
    secrets: ['HF_TOKEN'],
    weights: { prefix: 'bge-small', source: undefined, bucket: 'acme-weights' },
    ...overrides,
  });
}

/** What the mock monitor was asked to register, beyond the inputs: provider, options, dependencies. */
interface Registration {
  readonly type: string;
  readonly name: string;
  /** `<provider urn>::<provider id>`, or empty for a default provider. */
  readonly provider: string;
  readonly dependencies: readonly string[];
  readonly customTimeouts?: { readonly create: string; readonly update: string };
}

interface RegisterResourceRequest {
  getType(): string;
  getName(): string;
  getProvider(): string;
  getDependenciesList(): string[];
  getCustomtimeouts(): { getCreate(): string; getUpdate(): string } | undefined;
}

/**
 * The recording mock only sees inputs; resource options reach the monitor in the request. Wraps the
 * current mock monitor's `registerResource` (replaced with the monitor by the next `setMocks`).
 */
function recordRegistrations(): Registration[] {
  const monitor = pulumi.runtime.getMonitor() as unknown as { registerResource(req: RegisterResourceRequest, callback: unknown): void };
  const registerResource = monitor.registerResource.bind(monitor);
  const registrations: Registration[] = [];
  monitor.registerResource = (req, callback) => {
    const timeouts = req.getCustomtimeouts();
    registrations.push({
      type: req.getType(),
      name: req.getName(),
      provider: req.getProvider(),
      dependencies: req.getDependenciesList(),
      customTimeouts: timeouts && { create: timeouts.getCreate(), update: timeouts.getUpdate() },
    });
    registerResource(req, callback);
  };
  return registrations;
}

/* eslint-disable @typescript-eslint/no-explicit-any -- recorded inputs are untyped JSON */
describe('GkeFunction', () => {
  let mock: PulumiMock;
  let registrations: Registration[];
  let cluster: GkeCluster;

  before(async () => {
    mock = await mockPulumi({ 'gcp:project': 'acme', 'gcp:region': 'us-central1' });
    registrations = recordRegistrations();
    cluster = new GkeCluster('fn-cluster', { project: 'acme', region: 'us-central1', create: false, name: 'gpu-prod' });
  });

  /** Deploys one function and returns the recorded inputs of its objects, by type. */
  async function deploy(name: string, spec: Partial<FunctionSpec> = {}, args: Partial<GkeFunctionArgs> = {}) {
    const fn = new GkeFunction(name, { spec: fnSpec({ name, ...spec }), image: IMAGE, cluster, namespace: 'ml', weightsBucket: 'acme-weights', ...args });
    for (let i = 0; i < 3; i += 1) await settle();
    const all = (type: string): any[] => mock.ofType(type).filter((r) => r.name === name || r.name === `${name}-weights`).map((r) => r.inputs);
    const one = (type: string): any => {
      const found = all(type);
      assert.equal(found.length, 1, `one ${type} for ${name}`);
      return found[0];
    };
    const deployment = one(DEPLOYMENT);
    const pod = deployment.spec.template.spec;
    return { fn, all, one, deployment, pod, container: pod.containers[0] };
  }

  /** Constructing throws, and nothing at all reaches the engine. */
  async function assertRejected(build: () => unknown, message: RegExp): Promise<void> {
    await settle();
    const before = mock.resources.length;
    assert.throws(build, message);
    await settle();
    assert.equal(mock.resources.length, before);
  }

  describe('GPU', () => {
    it('selects nvidia-l4 nodes for an L4 and limits the container to gpu.count GPUs', async () => {
      const { pod, container } = await deploy('gpu-l4', { gpu: { type: 'L4', count: 2 } });
      assert.deepEqual(pod.nodeSelector, { 'cloud.google.com/gke-accelerator': 'nvidia-l4' });
      assert.equal(container.resources.limits['nvidia.com/gpu'], '2');
    });

    it('requests the GPU defaults explicitly when cpu and memory are unset (Autopilot adds none to GPU pods)', async () => {
      const { container } = await deploy('gpu-defaults', { gpu: { type: 'L4', count: 1 } });
      assert.deepEqual(container.resources.requests, { cpu: '4', memory: '15360Mi' });
      assert.deepEqual(container.resources.limits, { cpu: '4', memory: '15360Mi', 'nvidia.com/gpu': '1' });
    });

    it('requests the spec cpu and memoryMiB when set', async () => {
      const { container } = await deploy('gpu-sized', { cpu: 8, memoryMiB: 32768 });
      assert.deepEqual(container.resources.requests, { cpu: '8', memory: '32768Mi' });
      assert.equal(container.resources.limits.cpu, '8');
      assert.equal(container.resources.limits.memory, '32768Mi');
    });

    it('runs a CPU-only function without an accelerator selector or GPU limit', async () => {
      const { pod, container } = await deploy('cpu-only', { gpu: undefined });
      assert.equal(pod.nodeSelector, undefined);
      assert.deepEqual(container.resources, { requests: { cpu: '1', memory: '2048Mi' }, limits: { cpu: '1', memory: '2048Mi' } });
    });
  });

  describe('scaling', () => {
    it('keeps at least one replica when minInstances is 0, up to maxInstances', async () => {
      const { deployment, one } = await deploy('scale-zero', { minInstances: 0, maxInstances: 3 });
      assert.equal(deployment.spec.replicas, 1);
      const hpa = one(HPA);
      assert.equal(hpa.spec.minReplicas, 1);
      assert.equal(hpa.spec.maxReplicas, 3);
    });

    it('starts minInstances replicas and scales the Deployment on CPU, slowly down', async () => {
      const { deployment, one } = await deploy('scale-two', { minInstances: 2, maxInstances: 6 });
      assert.equal(deployment.spec.replicas, 2);
      const hpa = one(HPA);
      assert.deepEqual(hpa.spec.scaleTargetRef, { apiVersion: 'apps/v1', kind: 'Deployment', name: 'acme-ml-scale-two' });
      assert.equal(hpa.spec.minReplicas, 2);
      assert.equal(hpa.spec.maxReplicas, 6);
      assert.deepEqual(hpa.spec.metrics, [{ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 70 } } }]);
      assert.equal(hpa.spec.behavior.scaleDown.stabilizationWindowSeconds, 300);
    });
  });

  describe('container', () => {
    it('runs the image as the shim on CONTAINER_PORT with concurrency, timeout and env', async () => {
      const { container, pod } = await deploy('container-env', { concurrency: 8, timeoutMs: 60_000, env: { LOG_LEVEL: 'info' } });
      assert.equal(container.name, 'shim');
      assert.equal(container.image, IMAGE);
      assert.deepEqual(container.ports, [{ containerPort: 8080, name: 'http' }]);
      const env = Object.fromEntries(container.env.filter((e: any) => 'value' in e).map((e: any) => [e.name, e.value]));
      assert.equal(env.LOG_LEVEL, 'info');
      assert.equal(env.SGPU_CONCURRENCY, '8');
      assert.equal(env.SGPU_TIMEOUT_MS, '60000');
      assert.equal(pod.terminationGracePeriodSeconds, 30);
    });

    it('reads secrets from Kubernetes Secrets by reference, never by value', async () => {
      const { container } = await deploy('container-secrets', { secrets: ['HF_TOKEN', 'OpenAI_Key'] });
      const secrets = container.env.filter((e: any) => e.valueFrom);
      assert.deepEqual(secrets, [
        { name: 'HF_TOKEN', valueFrom: { secretKeyRef: { name: 'hf-token', key: 'value' } } },
        { name: 'OpenAI_Key', valueFrom: { secretKeyRef: { name: 'openai-key', key: 'value' } } },
      ]);
    });

    it('gives a startup probe 10 minutes and a readiness probe on the shim health path', async () => {
      const { container } = await deploy('container-probes');
      assert.deepEqual(container.startupProbe, { httpGet: { path: '/healthz', port: 8080 }, periodSeconds: 10, failureThreshold: 60 });
      assert.deepEqual(container.readinessProbe, { httpGet: { path: '/healthz', port: 8080 }, periodSeconds: 5 });
    });

    it('runs pods as the function service account', async () => {
      const { pod, one } = await deploy('container-ksa');
      assert.deepEqual(one(SERVICE_ACCOUNT).metadata, {
        name: 'acme-ml-container-ksa',
        namespace: 'ml',
        labels: { 'managed-by': 'serverless-gpu', service: 'acme-ml', stage: 'dev', function: 'container-ksa', app: 'acme-ml-container-ksa' },
      });
      assert.equal(pod.serviceAccountName, 'acme-ml-container-ksa');
    });
  });

  describe('weights', () => {
    it('mounts the bucket prefix read-only through the GCS FUSE CSI driver', async () => {
      const { deployment, pod, container } = await deploy('weights-mount', { weights: { prefix: 'models/bge', bucket: 'acme-weights' } });
      assert.deepEqual(deployment.spec.template.metadata.annotations, { 'gke-gcsfuse/volumes': 'true' });
      assert.deepEqual(pod.volumes, [
        {
          name: 'weights',
          csi: {
            driver: 'gcsfuse.csi.storage.gke.io',
            readOnly: true,
            volumeAttributes: { bucketName: 'acme-weights', mountOptions: 'implicit-dirs,only-dir=models/bge' },
          },
        },
      ]);
      assert.deepEqual(container.volumeMounts, [{ name: 'weights', mountPath: '/weights', readOnly: true }]);
    });

    it('lets the pod service account read exactly that bucket through Workload Identity Federation', async () => {
      const { all } = await deploy('weights-iam', {}, { weightsBucket: 'acme-weights-eu' });
      assert.deepEqual(all(BUCKET_MEMBER), [
        {
          bucket: 'acme-weights-eu',
          role: 'roles/storage.objectViewer',
          member:
            'principal://iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/acme.svc.id.goog/subject/ns/ml/sa/acme-ml-weights-iam',
        },
      ]);
    });

    it('deploys only after the bucket binding exists', async () => {
      await deploy('weights-order');
      const deployment = registrations.find((r) => r.type === DEPLOYMENT && r.name === 'weights-order')!;
      assert.ok(
        deployment.dependencies.some((urn) => urn.endsWith(`$${BUCKET_MEMBER}::weights-order-weights`)),
        `depends on the binding: ${deployment.dependencies.join(', ')}`,
      );
    });

    it('mounts nothing and grants nothing without weights', async () => {
      const { deployment, pod, container, all } = await deploy('weights-none', { weights: undefined }, { weightsBucket: undefined });
      assert.equal(deployment.spec.template.metadata.annotations, undefined);
      assert.equal(pod.volumes, undefined);
      assert.equal(container.volumeMounts, undefined);
      assert.deepEqual(all(BUCKET_MEMBER), []);
    });
  });

  describe('service', () => {
    it('exposes port 80 in the cluster, forwarding to the shim', async () => {
      const { one } = await deploy('svc-ports');
      const service = one(SERVICE);
      assert.equal(service.metadata.name, 'acme-ml-svc-ports');
      assert.equal(service.metadata.namespace, 'ml');
      assert.equal(service.spec.type, 'ClusterIP');
      assert.deepEqual(service.spec.selector, { app: 'acme-ml-svc-ports' });
      assert.deepEqual(service.spec.ports, [{ name: 'http', port: 80, targetPort: 8080 }]);
    });

    it('selects the pods the Deployment labels', async () => {
      const { deployment, one } = await deploy('svc-selector');
      assert.deepEqual(deployment.spec.selector.matchLabels, one(SERVICE).spec.selector);
      assert.equal(deployment.spec.template.metadata.labels.app, 'acme-ml-svc-selector');
    });

    it('reports the in-cluster address', async () => {
      const { fn } = await deploy('svc-address');
      assert.equal(await valueOf(fn.serviceName), 'acme-ml-svc-address');
      assert.equal(await valueOf(fn.namespace), 'ml');
      assert.equal(await valueOf(fn.address), 'http://acme-ml-svc-address.ml.svc.cluster.local');
    });
  });

  describe('resource options', () => {
    it('deploys every Kubernetes object through the cluster provider', async () => {
      await deploy('opts-provider');
      const provider = `${await valueOf(cluster.provider.urn)}::${await valueOf(cluster.provider.id)}`;
      for (const type of [SERVICE_ACCOUNT, DEPLOYMENT, SERVICE, HPA]) {
        const registration = registrations.find((r) => r.type === type && r.name === 'opts-provider');
        assert.equal(registration?.provider, provider, type);
      }
      const binding = registrations.find((r) => r.type === BUCKET_MEMBER && r.name === 'opts-provider-weights');
      assert.ok(binding && !binding.provider.includes('pulumi:providers:kubernetes'), 'the bucket binding uses the gcp provider');
    });

    it('waits 40 minutes for the Deployment to create or update: GPU nodes are slow to arrive', async () => {
      await deploy('opts-timeouts');
      const deployment = registrations.find((r) => r.type === DEPLOYMENT && r.name === 'opts-timeouts');
      assert.deepEqual(deployment?.customTimeouts, { create: '40m', update: '40m' });
    });
  });

  describe('rejections', () => {
    it('rejects an unknown GPU type before creating anything', async () => {
      await assertRejected(
        () => new GkeFunction('reject-gpu', { spec: fnSpec({ name: 'reject-gpu', gpu: { type: 'X100', count: 1 } }), image: IMAGE, cluster, namespace: 'ml', weightsBucket: 'b' }),
        /functions\.reject-gpu: gpu\.type "X100" is not offered on GKE Autopilot; use one of T4, L4, .*H100/,
      );
    });

    it('rejects weights without a bucket before creating anything', async () => {
      await assertRejected(
        () => new GkeFunction('reject-bucket', { spec: fnSpec({ name: 'reject-bucket' }), image: IMAGE, cluster, namespace: 'ml' }),
        /functions\.reject-bucket: weights need a bucket: set provider\.weights\.bucket/,
      );
    });
  });
});

describe('gkeProblems', () => {
  it('accepts every GPU type GKE offers, and no GPU', () => {
    for (const type of ['T4', 'L4', 'A100', 'A100-80GB', 'H100', 'H100-MEGA', 'H200', 'B200', 'RTX-PRO-6000']) {
      assert.deepEqual(gkeProblems(fnSpec({ gpu: { type, count: 1 } })), [], type);
    }
    assert.deepEqual(gkeProblems(fnSpec({ gpu: undefined })), []);
  });

  it('names gpu.type and lists the offered types for an unknown GPU', () => {
    const [problem, ...rest] = gkeProblems(fnSpec({ gpu: { type: 'A10G', count: 1 } }));
    assert.deepEqual(rest, []);
    assert.equal(problem, 'gpu.type "A10G" is not offered on GKE Autopilot; use one of T4, L4, A100, A100-80GB, H100, H100-MEGA, H200, B200, RTX-PRO-6000');
  });

  it('names gpu.count when it is below 1', () => {
    assert.deepEqual(gkeProblems(fnSpec({ gpu: { type: 'L4', count: 0 } })), ['gpu.count must be at least 1, got 0']);
  });

  it('names maxInstances when it is below 1: an HPA keeps one pod', () => {
    assert.deepEqual(gkeProblems(fnSpec({ minInstances: 0, maxInstances: 0 })), ['maxInstances must be at least 1 on GKE (an HPA keeps one pod), got 0']);
  });

  it('reports every problem at once', () => {
    assert.equal(gkeProblems(fnSpec({ gpu: { type: 'X', count: 0 }, maxInstances: 0 })).length, 3);
  });
});

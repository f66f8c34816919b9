import assert from 'node:assert/strict';
import * as pulumi from '@pulumi/pulumi';
import type { FunctionSpec } from '../../plugin/spec';
import { specFixture } from '../../plugin/spec-fixture';
import { CONTAINER_PORT, CONTAINER_WEIGHTS_PATH, READINESS_PATH } from '../pulumi/args';
import { mockPulumi, settle, valueOf, type PulumiMock, type RegisteredResource, ownedBy, selectors, constructorError } from '../pulumi/testing';
import { CloudRunFunction, cloudRunProblems, serviceAccountId, type CloudRunFunctionArgs } from './function';

const SERVICE = 'gcp:cloudrunv2/service:Service';
const ACCOUNT = 'gcp:serviceaccount/account:Account';
const BUCKET_MEMBER = 'gcp:storage/bucketIAMMember:BucketIAMMember';
const SECRET_MEMBER = 'gcp:secretmanager/secretIamMember:SecretIamMember';
const INVOKER = 'gcp:cloudrunv2/serviceIamMember:ServiceIamMember';
const IMAGE = 'us-central1-docker.pkg.dev/acme/image-search/embed@sha256:' + 'a'.repeat(64);

/** A complete spec: an L4 function with defaults for everything else. */
function spec(overrides: Partial<FunctionSpec> = {}): FunctionSpec {
  return specFixture(overrides);
}

/* eslint-disable @typescript-eslint/no-explicit-any -- recorded inputs are plain JSON */
interface Deployed {
  readonly component: CloudRunFunction;
  /** Resources this component registered (itself included), in order. */
  readonly resources: RegisteredResource[];
  /** Children seen by a transformation on the component: their options, as passed. */
  readonly children: { type: string; name: string; resource: pulumi.Resource; opts: pulumi.ResourceOptions }[];
  all(type: string): any[];
  one(type: string): any;
}

describe('CloudRunFunction', function () {
  let mock: PulumiMock;
  let counter = 0;

  before(async () => {
    mock = await mockPulumi({ 'gcp:project': 'acme', 'gcp:region': 'us-central1' });
  });


  async function deploy(fnSpec: FunctionSpec, extra: Partial<CloudRunFunctionArgs> = {}): Promise<Deployed> {
    const name = `crf${(counter += 1)}`;
    const children: Deployed['children'] = [];
    // A component's transformations see the component itself, then every child parented to it.
    const record: pulumi.ResourceTransformation = ({ type, name: child, resource, opts }) => {
      if (type !== 'serverless-gpu:cloudrun:Function') children.push({ type, name: child, resource, opts });
      return undefined;
    };
    const component = new CloudRunFunction(
      name,
      { spec: fnSpec, image: IMAGE, project: 'acme', region: 'us-central1', ...extra },
      { transformations: [record] },
    );
    await settle();
    const resources = mock.resources.filter(ownedBy(name));
    const { all, one } = selectors(resources);
    return { component, resources, children, all, one };
  }

  const containerOf = (service: any): any => service.template.containers[0];

  const rejection = constructorError;

  describe('GPU and sizing', () => {
    it('requests one nvidia-l4 with CPU always allocated', async () => {
      const { one } = await deploy(spec());
      const service = one(SERVICE);
      assert.deepEqual(service.template.nodeSelector, { accelerator: 'nvidia-l4' });
      assert.equal(containerOf(service).resources.limits['nvidia.com/gpu'], '1');
      assert.equal(containerOf(service).resources.cpuIdle, false);
      assert.equal(containerOf(service).resources.startupCpuBoost, true);
      assert.equal(service.template.gpuZonalRedundancyDisabled, false);
      assert.equal(service.template.executionEnvironment, 'EXECUTION_ENVIRONMENT_GEN2');
    });

    it('defaults CPU and memory to the L4 minimums', async () => {
      const { one } = await deploy(spec());
      const { limits } = containerOf(one(SERVICE)).resources;
      assert.equal(limits.cpu, '4');
      assert.equal(limits.memory, '16384Mi');
    });

    it('passes explicit CPU and memory through', async () => {
      const { one } = await deploy(spec({ cpu: 8, memoryMiB: 32_768 }));
      const { limits } = containerOf(one(SERVICE)).resources;
      assert.equal(limits.cpu, '8');
      assert.equal(limits.memory, '32768Mi');
    });

    it('asks for best-effort GPU capacity when gpuZonalRedundancyDisabled is set', async () => {
      const { one } = await deploy(spec(), { gpuZonalRedundancyDisabled: true });
      assert.equal(one(SERVICE).template.gpuZonalRedundancyDisabled, true);
    });

    it('has no node selector or GPU limit for a CPU-only spec', async () => {
      const { one } = await deploy(spec({ gpu: undefined }));
      const service = one(SERVICE);
      assert.equal(service.template.nodeSelector, undefined);
      assert.equal(service.template.gpuZonalRedundancyDisabled, undefined);
      assert.deepEqual(containerOf(service).resources.limits, { cpu: '1', memory: '2048Mi' });
      assert.equal(containerOf(service).resources.cpuIdle, true);
    });
  });

  describe('the service', () => {
    it('sets scaling, concurrency and the timeout from the spec', async () => {
      const { one } = await deploy(spec({ minInstances: 1, maxInstances: 3, concurrency: 4, timeoutMs: 90_500 }));
      const { template } = one(SERVICE);
      assert.deepEqual(template.scaling, { minInstanceCount: 1, maxInstanceCount: 3 });
      assert.equal(template.maxInstanceRequestConcurrency, 4);
      assert.equal(template.timeout, '91s');
    });

    it('names the service after service, stage and function, destroyable, labelled, in the region', async () => {
      const { one, component } = await deploy(spec());
      const service = one(SERVICE);
      assert.equal(service.name, 'image-search-dev-embed');
      assert.equal(service.location, 'us-central1');
      assert.equal(service.project, 'acme');
      assert.equal(service.deletionProtection, false);
      assert.equal(service.ingress, 'INGRESS_TRAFFIC_ALL');
      assert.deepEqual(service.labels, { 'managed-by': 'serverless-gpu', service: 'image-search', stage: 'dev', function: 'embed' });
      assert.equal(await valueOf(component.serviceName), 'image-search-dev-embed');
      assert.equal(await valueOf(component.url), 'https://image-search-dev-embed-mock-uc.a.run.app');
    });

    it('runs the image on the shim port with startup and liveness probes on the readiness path', async () => {
      const { one } = await deploy(spec());
      const container = containerOf(one(SERVICE));
      assert.equal(container.image, IMAGE);
      assert.deepEqual(container.ports, { containerPort: CONTAINER_PORT, name: 'http1' });
      assert.deepEqual(container.startupProbe, {
        httpGet: { path: READINESS_PATH, port: CONTAINER_PORT },
        periodSeconds: 10,
        timeoutSeconds: 5,
        failureThreshold: 24,
      });
      assert.deepEqual(container.livenessProbe, { httpGet: { path: READINESS_PATH, port: CONTAINER_PORT }, periodSeconds: 30 });
    });

    it('registers every child under the component', async () => {
      const { children, component, resources } = await deploy(spec({ secrets: ['HF_TOKEN'], invokers: ['user:ana@acme.com'] }));
      assert.equal(children.length, resources.length - 1, 'every registered child went through the component');
      for (const child of children) assert.equal(child.opts.parent, component, `${child.name} is parented to the component`);
      assert.ok(resources.some((r) => r.type === 'serverless-gpu:cloudrun:Function'));
    });
  });

  describe('service account and least privilege', () => {
    it('runs as its own service account', async () => {
      const { one, component } = await deploy(spec());
      const account = one(ACCOUNT);
      assert.equal(account.accountId, 'sgpu-image-search-dev-embed');
      assert.match(account.displayName, /image-search\/dev\/embed/);
      const email = 'sgpu-image-search-dev-embed@acme.iam.gserviceaccount.com';
      assert.equal(one(SERVICE).template.serviceAccount, email);
      assert.equal(await valueOf(component.serviceAccountEmail), email);
    });

    it('derives a valid account id even from long names', () => {
      const id = serviceAccountId({ service: 'a-very-long-service-name-indeed', stage: 'production', name: 'embedImages' });
      assert.match(id, /^[a-z][a-z0-9-]{4,28}[a-z0-9]$/);
      assert.notEqual(id, serviceAccountId({ service: 'a-very-long-service-name-indeed', stage: 'production', name: 'embedText' }));
    });

    it('may read only its weights bucket, mounted read-only at the weights path with only its prefix', async () => {
      const { one, all } = await deploy(spec({ weights: { prefix: 'models/clip' } }), { weightsBucket: 'acme-weights' });
      assert.deepEqual(all(BUCKET_MEMBER), [
        { bucket: 'acme-weights', role: 'roles/storage.objectViewer', member: 'serviceAccount:sgpu-image-search-dev-embed@acme.iam.gserviceaccount.com' },
      ]);
      const { template } = one(SERVICE);
      assert.deepEqual(template.volumes, [
        { name: 'weights', gcs: { bucket: 'acme-weights', readOnly: true, mountOptions: ['implicit-dirs', 'only-dir=models/clip'] } },
      ]);
      assert.deepEqual(containerOf(one(SERVICE)).volumeMounts, [{ name: 'weights', mountPath: CONTAINER_WEIGHTS_PATH }]);
    });

    it('takes the weights bucket from the spec when the args leave it out', async () => {
      const { one } = await deploy(spec({ weights: { prefix: 'models/clip', bucket: 'spec-weights' } }));
      assert.equal(one(BUCKET_MEMBER).bucket, 'spec-weights');
    });

    it('mounts nothing and binds no bucket without weights', async () => {
      const { one, all } = await deploy(spec(), { weightsBucket: 'acme-weights' });
      assert.deepEqual(all(BUCKET_MEMBER), []);
      assert.equal(one(SERVICE).template.volumes, undefined);
      assert.equal(containerOf(one(SERVICE)).volumeMounts, undefined);
    });

    it('may access only each named secret, and passes them by reference, never by value', async () => {
      const { one, all } = await deploy(spec({ env: { MODEL: 'clip', LOG_LEVEL: 'info' }, secrets: ['HF_TOKEN', 'API_KEY'] }));
      const member = 'serviceAccount:sgpu-image-search-dev-embed@acme.iam.gserviceaccount.com';
      assert.deepEqual(
        all(SECRET_MEMBER),
        ['HF_TOKEN', 'API_KEY'].map((secretId) => ({ project: 'acme', secretId, role: 'roles/secretmanager.secretAccessor', member })),
      );
      assert.deepEqual(containerOf(one(SERVICE)).envs, [
        { name: 'API_KEY', valueSource: { secretKeyRef: { secret: 'API_KEY', version: 'latest' } } },
        { name: 'HF_TOKEN', valueSource: { secretKeyRef: { secret: 'HF_TOKEN', version: 'latest' } } },
        { name: 'LOG_LEVEL', value: 'info' },
        { name: 'MODEL', value: 'clip' },
      ]);
    });

    it('creates the service after its bucket and secret bindings', async () => {
      const { children } = await deploy(spec({ weights: { prefix: 'm' }, secrets: ['HF_TOKEN'] }), { weightsBucket: 'acme-weights' });
      const service = children.find((c) => c.type === SERVICE);
      const bindings = children.filter((c) => c.type === BUCKET_MEMBER || c.type === SECRET_MEMBER).map((c) => c.resource);
      assert.equal(bindings.length, 2);
      assert.deepEqual(service?.opts.dependsOn, bindings);
    });
  });

  describe('who may call it', () => {
    it('grants no invoker, and never allUsers, by default', async () => {
      const { all } = await deploy(spec());
      assert.deepEqual(all(INVOKER), []);
    });

    it('binds run.invoker once per named member, on this service only', async () => {
      const invokers = ['serviceAccount:api@acme.iam.gserviceaccount.com', 'group:ml@acme.com'];
      const { all } = await deploy(spec({ invokers }));
      assert.deepEqual(
        all(INVOKER),
        invokers.map((member) => ({ project: 'acme', location: 'us-central1', name: 'image-search-dev-embed', role: 'roles/run.invoker', member })),
      );
    });

    it('adds allUsers only when public is true', async () => {
      const { all } = await deploy(spec({ public: true, invokers: ['group:ml@acme.com'] }));
      assert.deepEqual(all(INVOKER).map((i) => i.member), ['group:ml@acme.com', 'allUsers']);
    });
  });

  describe('rejected specs', () => {
    const cases: [string, FunctionSpec, Partial<CloudRunFunctionArgs>, RegExp][] = [
      ['a GPU Cloud Run does not offer', spec({ gpu: { type: 'A100', count: 1 } }), {}, /gpu\.type "A100" is not offered by Cloud Run \(offered: L4, RTX-PRO-6000\)/],
      ['more than one GPU', spec({ gpu: { type: 'L4', count: 2 } }), {}, /gpu\.count must be 1 on Cloud Run/],
      ['too few vCPUs for the GPU', spec({ cpu: 2 }), {}, /cpu 2 is below the 4 vCPU an L4 needs/],
      ['too little memory for the GPU', spec({ memoryMiB: 8192 }), {}, /memory 8192Mi is below the 16384Mi an L4 needs/],
      ['a timeout above an hour', spec({ timeoutMs: 7_200_000 }), {}, /timeout 7200s exceeds Cloud Run's 3600s/],
      ['concurrency above 1000', spec({ concurrency: 1001 }), {}, /concurrency 1001 is above 1000/],
      ['allUsers among invokers without public', spec({ invokers: ['allUsers'] }), {}, /invokers include "allUsers": set public: true/],
      ['weights without a bucket', spec({ weights: { prefix: 'models/clip' } }), {}, /weightsBucket is required when weights is set/],
    ];
    for (const [what, rejected, extra, message] of cases) {
      it(`rejects ${what}, naming the field, and creates nothing`, async () => {
        const name = `crf${(counter += 1)}`;
        const error = rejection(() => new CloudRunFunction(name, { spec: rejected, image: IMAGE, project: 'acme', region: 'us-central1', ...extra }));
        assert.match(error.message, message);
        assert.match(error.message, /^functions\.embed: cannot deploy to Cloud Run/);
        await settle();
        assert.deepEqual(mock.resources.filter(ownedBy(name)), []);
      });
    }

    it('lists every problem at once', () => {
      const error = rejection(
        () => new CloudRunFunction('crf-many', { spec: spec({ cpu: 2, memoryMiB: 8192, timeoutMs: 7_200_000 }), image: IMAGE, project: 'acme', region: 'us-central1' }),
      );
      for (const field of ['cpu 2', 'memory 8192Mi', 'timeout 7200s']) assert.ok(error.message.includes(field), field);
    });
  });
});

describe('cloudRunProblems', () => {
  it('finds nothing wrong with an L4 at its minimums, nor with a CPU-only spec', () => {
    assert.deepEqual(cloudRunProblems(spec({ cpu: 4, memoryMiB: 16_384, timeoutMs: 3_600_000, concurrency: 1000 })), []);
    assert.deepEqual(cloudRunProblems(spec({ gpu: undefined, cpu: 1, memoryMiB: 512 })), []);
  });

  it('accepts the RTX PRO 6000 with its own minimums', () => {
    assert.deepEqual(cloudRunProblems(spec({ gpu: { type: 'RTX-PRO-6000', count: 1 }, cpu: 20, memoryMiB: 81_920 })), []);
    assert.deepEqual(cloudRunProblems(spec({ gpu: { type: 'RTX-PRO-6000', count: 1 }, cpu: 8 })), ['cpu 8 is below the 20 vCPU an RTX-PRO-6000 needs']);
  });

  it('names each field at fault', () => {
    assert.deepEqual(cloudRunProblems(spec({ gpu: { type: 'A100', count: 2 }, timeoutMs: 7_200_000, concurrency: 2000 })), [
      'gpu.type "A100" is not offered by Cloud Run (offered: L4, RTX-PRO-6000)',
      'gpu.count must be 1 on Cloud Run, got 2',
      "timeout 7200s exceeds Cloud Run's 3600s",
      "concurrency 2000 is above 1000, Cloud Run's maximum",
    ]);
    assert.deepEqual(cloudRunProblems(spec({ cpu: 2, memoryMiB: 8192 })), [
      'cpu 2 is below the 4 vCPU an L4 needs',
      'memory 8192Mi is below the 16384Mi an L4 needs',
    ]);
  });

  it('rejects public members unless public is true', () => {
    assert.deepEqual(cloudRunProblems(spec({ invokers: ['allAuthenticatedUsers'] })), [
      'invokers include "allAuthenticatedUsers": set public: true to let anyone call the function',
    ]);
    assert.deepEqual(cloudRunProblems(spec({ public: true, invokers: ['allUsers'] })), []);
  });

  it('rejects env names Cloud Run reserves and secrets that clash with env', () => {
    assert.deepEqual(cloudRunProblems(spec({ env: { PORT: '9000', HF_TOKEN: 'x' }, secrets: ['HF_TOKEN'] })), [
      'env.PORT is set by Cloud Run itself',
      'secrets "HF_TOKEN" is also set in env',
    ]);
  });

  it('rejects a service whose Cloud Run name would not start with a letter', () => {
    assert.deepEqual(cloudRunProblems(spec({ service: '3d-models' })), [
      'service "3d-models": the Cloud Run service name "3d-models-dev-embed" must start with a letter',
    ]);
  });
});

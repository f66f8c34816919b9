/**
 * The Pulumi program of every example, as `sls gpu plan --json` prints it (the real CLI, the program run
 * under Pulumi's mocks) — checked per spec field — and as `sls gpu eject` writes it: compiled with
 * `tsc --strict` against the real @pulumi packages, then run under the same mocks, where it must
 * declare exactly what the plan declares.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { ROOT, copyService, run, sls } from './helpers';

interface PlannedResource {
  type: string;
  name: string;
  parent: string | null;
  inputs: Record<string, unknown>;
}

interface PlanJson {
  resources: PlannedResource[];
  costFloorPerHour: number;
}

const TSC = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

function only(plan: PlanJson, type: string, parent?: string): PlannedResource {
  const found = plan.resources.filter((r) => r.type === type && (parent === undefined || r.parent === parent));
  assert.equal(found.length, 1, `one ${type}${parent ? ` under ${parent}` : ''}, found ${found.length}`);
  return found[0];
}

const members = (plan: PlanJson): string[] => plan.resources.map((r) => r.inputs.member).filter((m): m is string => typeof m === 'string');

/** Runs the compiled ejected program under the same mocks as the plan; returns what it registered. */
async function runEjected(dir: string, config: Record<string, string>): Promise<PlannedResource[]> {
  const script = path.join(dir, 'run-under-mocks.js');
  fs.writeFileSync(
    script,
    `const { mockPulumi, settle } = require(${JSON.stringify(path.join(ROOT, 'dist', 'providers', 'pulumi', 'testing.js'))});
(async () => {
  const mock = await mockPulumi(${JSON.stringify(config)});
  require('./bin/index.js');
  await settle(); await settle();
  const nameOf = new Map(mock.resources.map((r) => [r.urn, r.name]));
  process.stdout.write(JSON.stringify(mock.resources.map((r) => ({ type: r.type, name: r.name, parent: r.parent ? nameOf.get(r.parent) : null, inputs: r.inputs }))));
})().catch((e) => { console.error(e); process.exit(1); });`,
  );
  const result = await run(process.execPath, [script], dir);
  assert.equal(result.code, 0, result.output);
  return JSON.parse(result.stdout) as PlannedResource[];
}

const EXAMPLES: Array<{ name: string; config: Record<string, string>; check: (plan: PlanJson) => void; floor: number }> = [
  {
    name: 'classifier',
    config: { 'gcp:project': 'acme', 'gcp:region': 'us-central1', 'aws:region': 'us-east-1' },
    floor: 0.672,
    check: (plan) => {
      const service = only(plan, 'gcp:cloudrunv2/service:Service').inputs as Json;
      assert.equal(service.template.nodeSelector.accelerator, 'nvidia-l4', 'gpu: L4');
      assert.deepEqual(service.template.containers[0].resources.limits, { cpu: '4', memory: '16384Mi', 'nvidia.com/gpu': '1' });
      assert.equal(service.template.containers[0].resources.cpuIdle, false);
      assert.deepEqual(service.template.scaling, { minInstanceCount: 1, maxInstanceCount: 20 }, 'minInstances from serverless.yml, maxInstances from the annotation');
      assert.equal(service.template.maxInstanceRequestConcurrency, 8);
      assert.equal(service.template.timeout, '60s');
      assert.equal(service.deletionProtection, false);
      assert.deepEqual(service.template.volumes, [{ name: 'weights', gcs: { bucket: 'acme-models', readOnly: true, mountOptions: ['implicit-dirs', 'only-dir=classifier'] } }]);
      assert.equal(service.template.containers[0].startupProbe.httpGet.path, '/healthz');
      const reader = plan.resources.find((r) => r.type === 'gcp:storage/bucketIAMMember:BucketIAMMember')!;
      assert.deepEqual([reader.inputs.bucket, reader.inputs.role], ['acme-models', 'roles/storage.objectViewer']);
      assert.equal(plan.resources.filter((r) => r.type === 'gcp:cloudrunv2/serviceIamMember:ServiceIamMember').length, 0, 'no invoker named, none bound');
      assert.ok(!members(plan).includes('allUsers'), 'never public by default');
      const payloads = only(plan, 'gcp:storage/bucket:Bucket').inputs as Json;
      assert.deepEqual(payloads.lifecycleRules, [{ action: { type: 'Delete' }, condition: { age: 1 } }], 'payloads expire after a day');
      const payloadAccess = plan.resources.find((r) => r.name === 'classify-payloads')!.inputs;
      assert.equal(payloadAccess.role, 'roles/storage.objectUser');
      const envs = Object.fromEntries((service.template.containers[0].envs as Array<{ name: string; value: string }>).map((e) => [e.name, e.value]));
      assert.match(envs.SGPU_PAYLOAD_STORE, /^gs:\/\/.+\/classify\/$/, 'large inputs and outputs go through the payload bucket');

      const job = only(plan, 'aws:batch/jobDefinition:JobDefinition').inputs as Json;
      const container = JSON.parse(job.containerProperties as string) as Json;
      assert.deepEqual(container.resourceRequirements, [{ type: 'GPU', value: '1' }, { type: 'VCPU', value: '4' }, { type: 'MEMORY', value: '16384' }]);
      assert.equal(job.retryStrategy.attempts, 2, 'retries: 1');
      assert.equal(job.timeout.attemptDurationSeconds, 7200, "timeout: '2h'");
      assert.match(container.image, /^123456789012\.dkr\.ecr\.us-east-1\.amazonaws\.com\/ml\/classifier[:@]/, 'Batch pulls from ECR (provider.aws.registry)');
      const env = Object.fromEntries((container.environment as Array<{ name: string; value: string }>).map((e) => [e.name, e.value]));
      assert.equal(env.SGPU_MODE, 'batch');
      assert.equal(env.SGPU_WEIGHTS_PREFIX, 'classifier');
      const ce = only(plan, 'aws:batch/computeEnvironment:ComputeEnvironment').inputs as Json;
      assert.deepEqual(ce.computeResources.ec2Configurations, [{ imageType: 'ECS_AL2023_NVIDIA' }]);
      const policy = JSON.parse(plan.resources.find((r) => r.type === 'aws:iam/rolePolicy:RolePolicy' && r.parent === 'train')!.inputs.policy as string) as Json;
      const resources = (policy.Statement as Json[]).flatMap((s) => [].concat(s.Resource));
      assert.ok(resources.every((r: string) => r !== '*' && !r.endsWith(':::*')), `least privilege: ${resources.join(', ')}`);
    },
  },
  {
    name: 'kfold',
    config: { 'aws:region': 'us-east-1' },
    floor: 0,
    check: (plan) => {
      const job = only(plan, 'aws:batch/jobDefinition:JobDefinition').inputs as Json;
      const container = JSON.parse(job.containerProperties as string) as Json;
      assert.deepEqual(container.resourceRequirements, [{ type: 'GPU', value: '1' }, { type: 'VCPU', value: '4' }, { type: 'MEMORY', value: '15360' }]);
      assert.equal(job.retryStrategy.attempts, 3, 'retries: 2');
      assert.equal(job.timeout.attemptDurationSeconds, 3600);
      const ce = only(plan, 'aws:batch/computeEnvironment:ComputeEnvironment').inputs as Json;
      assert.equal(ce.computeResources.type, 'SPOT', 'provider.aws.spot');
      assert.equal(ce.computeResources.maxVcpus, 64);
      assert.ok((ce.computeResources.instanceTypes as string[]).includes('g6.xlarge'), 'an L4 instance that fits 4 vCPU and 15 GiB');
      assert.equal(plan.resources.filter((r) => r.type.startsWith('gcp:')).length, 0, 'no Google resource for an AWS-only service');
    },
  },
  {
    name: 'embeddings',
    config: { 'gcp:project': 'acme', 'gcp:region': 'us-central1' },
    floor: 0.71,
    check: (plan) => {
      const cluster = only(plan, 'gcp:container/cluster:Cluster').inputs as Json;
      assert.equal(cluster.enableAutopilot, true);
      assert.equal(cluster.location, 'us-central1', 'Autopilot clusters are regional');
      const deployment = only(plan, 'kubernetes:apps/v1:Deployment').inputs as Json;
      const pod = deployment.spec.template.spec;
      assert.equal(pod.nodeSelector['cloud.google.com/gke-accelerator'], 'nvidia-l4');
      assert.equal(pod.containers[0].resources.limits['nvidia.com/gpu'], '1');
      assert.equal(deployment.spec.template.metadata.annotations['gke-gcsfuse/volumes'], 'true');
      assert.equal(pod.volumes[0].csi.driver, 'gcsfuse.csi.storage.gke.io');
      assert.equal(pod.volumes[0].csi.volumeAttributes.mountOptions, 'implicit-dirs,only-dir=embeddings/v1');
      const hpa = only(plan, 'kubernetes:autoscaling/v2:HorizontalPodAutoscaler').inputs as Json;
      assert.deepEqual([hpa.spec.minReplicas, hpa.spec.maxReplicas], [1, 8]);
      const env = Object.fromEntries((pod.containers[0].env as Array<{ name: string; value: string }>).map((e) => [e.name, e.value]));
      assert.equal(env.SGPU_CONCURRENCY, '16');
      assert.match(env.SGPU_PAYLOAD_STORE, /^gs:\/\/.+\/embed\/$/);
      assert.match(members(plan).find((m) => m.startsWith('principal://'))!, /subject\/ns\/embeddings\/sa\//, 'Workload Identity for the pod');
    },
  },
];

for (const example of EXAMPLES) {
  describe(`the Pulumi program of examples/${example.name}`, function () {
    this.timeout(240_000);
    let dir = '';
    let plan: PlanJson;

    before(async () => {
      dir = copyService(path.join(ROOT, 'examples', example.name), `program-${example.name}`);
      const printed = await sls('osls', ['gpu', 'plan', '--json'], dir);
      assert.equal(printed.code, 0, printed.output);
      plan = JSON.parse(printed.stdout.slice(printed.stdout.indexOf('{'))) as PlanJson;
    });

    after(() => fs.rmSync(dir, { recursive: true, force: true }));

    it('prints { resources: [{ type, name, parent, inputs }], costFloorPerHour } with sls gpu plan --json', () => {
      assert.ok(plan.resources.length > 5);
      for (const r of plan.resources) {
        assert.deepEqual(Object.keys(r).sort(), ['inputs', 'name', 'parent', 'type']);
        assert.match(r.type, /^[a-z0-9-]+:[A-Za-z0-9/]*:[A-Za-z0-9]+$/);
      }
      assert.ok(plan.resources.some((r) => r.type.startsWith('serverless-gpu:') && r.type.endsWith(':Function')), 'one component per function');
      assert.ok(plan.resources.filter((r) => !r.type.startsWith('serverless-gpu:') && r.type !== 'kubernetes:core/v1:Namespace').every((r) => r.parent !== null), 'every resource sits under a component');
      assert.equal(plan.costFloorPerHour, example.floor);
    });

    it('carries each spec field into the resource inputs', () => example.check(plan));

    it('says in the text plan that it is not a diff against the cloud', async () => {
      const text = await sls('osls', ['gpu', 'plan'], dir);
      assert.equal(text.code, 0, text.output);
      assert.match(text.output, /not a diff against the cloud/);
      assert.match(text.output, /Cost floor/);
    });

    it('ejects a project that compiles with tsc --strict and declares exactly what the plan declares', async () => {
      const out = path.join(dir, 'infra');
      const ejected = await sls('osls', ['gpu', 'eject', '--out', out], dir);
      assert.equal(ejected.code, 0, ejected.output);
      for (const file of ['Pulumi.yaml', 'index.ts', 'specs.ts', 'package.json', 'tsconfig.json']) assert.ok(fs.existsSync(path.join(out, file)), file);
      assert.ok(fs.readFileSync(path.join(out, 'index.ts'), 'utf8').split('\n').length < 120, 'short enough to review in one sitting');
      const compiled = await run(process.execPath, [TSC, '-p', out], out);
      assert.equal(compiled.code, 0, compiled.output);
      const declared = await runEjected(out, example.config);
      const key = (r: PlannedResource): string => `${r.type} ${r.name} <- ${r.parent}`;
      assert.deepEqual(declared.map(key).sort(), plan.resources.map(key).sort());
      const inputsOf = new Map(plan.resources.map((r) => [key(r), r.inputs]));
      for (const r of declared) assert.deepEqual(r.inputs, inputsOf.get(key(r)), key(r));
    });
  });
}

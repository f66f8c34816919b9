import assert from 'node:assert/strict';
import * as pulumi from '@pulumi/pulumi';
import type { FunctionSpec } from '../../plugin/spec';
import { specFixture } from '../../plugin/spec-fixture';
import { CONTAINER_WEIGHTS_PATH } from '../pulumi/args';
import { mockPulumi, settle, valueOf, type PulumiMock, type RegisteredResource, ownedBy, selectors, constructorError } from '../pulumi/testing';
import { BatchEnvironment } from './environment';
import { BatchFunction, batchProblems, jobInstanceTypes, jobPolicy, type BatchFunctionArgs } from './function';

const JOB_DEFINITION = 'aws:batch/jobDefinition:JobDefinition';
const ROLE = 'aws:iam/role:Role';
const ROLE_POLICY = 'aws:iam/rolePolicy:RolePolicy';
const IMAGE = '123456789012.dkr.ecr.us-east-1.amazonaws.com/image-search@sha256:' + 'a'.repeat(64);
const ACCOUNT = '123456789012';

/** A complete spec: one L4 on batch, defaults for everything else. */
function spec(overrides: Partial<FunctionSpec> = {}): FunctionSpec {
  return specFixture({ target: 'batch', ...overrides });
}

describe('batchProblems', () => {
  it('accepts a default L4 spec', () => {
    assert.deepEqual(batchProblems(spec()), []);
  });

  it('accepts a CPU-only spec', () => {
    assert.deepEqual(batchProblems(spec({ gpu: undefined })), []);
  });

  it('rejects minInstances: jobs start on demand', () => {
    assert.deepEqual(batchProblems(spec({ minInstances: 1 })), [
      'minInstances is not supported on batch: jobs start on demand (use cloudrun or gke to keep instances warm)',
    ]);
  });

  it('rejects an unknown GPU type, listing the offered ones', () => {
    const [problem] = batchProblems(spec({ gpu: { type: 'RTX-PRO-6000', count: 1 } }));
    assert.equal(problem, 'gpu.type "RTX-PRO-6000" is not offered on batch; choose one of T4, A10G, L4, A100, H100');
  });

  it('names gpu.count when no instance has that many GPUs', () => {
    assert.deepEqual(batchProblems(spec({ gpu: { type: 'T4', count: 8 } })), ['gpu.count 8 is more than any T4 instance has (at most 4)']);
  });

  it('names cpu when no instance with the GPUs has that many vCPUs', () => {
    assert.deepEqual(batchProblems(spec({ cpu: 200 })), ['cpu 200 is more than any L4 instance with 1 GPU(s) has (at most 192 vCPUs)']);
  });

  it('names memory when no instance with the GPUs and vCPUs leaves that much for the job', () => {
    assert.deepEqual(batchProblems(spec({ gpu: { type: 'T4', count: 1 }, cpu: 16, memoryMiB: 200 * 1024 })), [
      'memory 204800 MiB is more than any T4 instance with 1 GPU(s) and 16 vCPUs leaves for a job (at most 195584 MiB)',
    ]);
  });

  it('names cpu for a CPU-only spec larger than any CPU family', () => {
    assert.deepEqual(batchProblems(spec({ gpu: undefined, cpu: 256 })), ['cpu 256 is more than any CPU instance (m6i, c6i) has (at most 128 vCPUs)']);
  });

  it('lists every problem at once', () => {
    assert.equal(batchProblems(spec({ minInstances: 2, gpu: { type: 'B200', count: 1 } })).length, 2);
  });
});

describe('jobInstanceTypes', () => {
  it('offers every instance of the GPU type that fits, smallest first', () => {
    assert.deepEqual(jobInstanceTypes(spec()), ['g6.xlarge', 'g6.2xlarge', 'g6.4xlarge', 'g6.12xlarge', 'g6.48xlarge']);
  });

  it('defaults CPU and memory per GPU: 4 GPUs need the 4-GPU sizes', () => {
    assert.deepEqual(jobInstanceTypes(spec({ gpu: { type: 'L4', count: 4 } })), ['g6.12xlarge', 'g6.48xlarge']);
  });

  it('drops sizes too small for the CPU and memory asked for', () => {
    assert.deepEqual(jobInstanceTypes(spec({ gpu: { type: 'A10G', count: 1 }, cpu: 8, memoryMiB: 40_000 })), ['g5.4xlarge', 'g5.12xlarge']);
  });

  it('keeps memory within what ECS leaves on the instance', () => {
    assert.deepEqual(jobInstanceTypes(spec({ gpu: { type: 'T4', count: 1 }, memoryMiB: 15 * 1024 })), ['g4dn.xlarge', 'g4dn.2xlarge', 'g4dn.12xlarge']);
    assert.deepEqual(jobInstanceTypes(spec({ gpu: { type: 'T4', count: 1 }, memoryMiB: 15 * 1024 + 1 })), ['g4dn.2xlarge', 'g4dn.12xlarge']);
  });

  it('gives CPU-only specs small CPU families', () => {
    assert.deepEqual(jobInstanceTypes(spec({ gpu: undefined })), ['m6i', 'c6i']);
    assert.deepEqual(jobInstanceTypes(spec({ gpu: undefined, memoryMiB: 300 * 1024 })), ['m6i']);
  });

  it('is empty when nothing fits', () => {
    assert.deepEqual(jobInstanceTypes(spec({ gpu: { type: 'L4', count: 16 } })), []);
  });
});

describe('jobPolicy', () => {
  it('grants nothing outside the call prefix without weights or secrets', () => {
    assert.deepEqual(jobPolicy({ callBucketArn: 'arn:aws:s3:::calls', callPrefix: 'calls/s/dev/f/', secretArns: [] }).Statement, [
      { Sid: 'ListCalls', Effect: 'Allow', Action: 's3:ListBucket', Resource: 'arn:aws:s3:::calls', Condition: { StringLike: { 's3:prefix': ['calls/s/dev/f/*'] } } },
      { Sid: 'ReadWriteCalls', Effect: 'Allow', Action: ['s3:GetObject', 's3:PutObject'], Resource: 'arn:aws:s3:::calls/calls/s/dev/f/*' },
    ]);
  });
});

/* eslint-disable @typescript-eslint/no-explicit-any -- recorded inputs are plain JSON */
interface Deployed {
  readonly component: BatchFunction;
  readonly resources: RegisteredResource[];
  readonly children: { name: string; opts: pulumi.ResourceOptions }[];
  all(type: string): any[];
  one(type: string): any;
  /** The job definition's containerProperties, parsed. */
  container(): any;
}

describe('BatchFunction', function () {
  let mock: PulumiMock;
  let environment: BatchEnvironment;
  let environmentResources: RegisteredResource[];
  let counter = 0;

  before(async () => {
    mock = await mockPulumi({ 'aws:region': 'us-east-1' });
    environment = new BatchEnvironment('bfn-env', { service: 'image-search', stage: 'dev', instanceTypes: ['g6'], callBucket: 'acme-calls' });
    await settle();
    environmentResources = mock.resources.filter((r) => r.name.startsWith('bfn-env'));
  });

  const executionRole = (): RegisteredResource => {
    const role = environmentResources.find((r) => r.type === ROLE && r.name.endsWith('-execution'));
    assert.ok(role);
    return role;
  };

  async function deploy(fnSpec: FunctionSpec, extra: Partial<BatchFunctionArgs> = {}): Promise<Deployed> {
    const name = `bfn${(counter += 1)}`;
    const children: Deployed['children'] = [];
    const record: pulumi.ResourceTransformation = ({ type, name: child, opts }) => {
      if (type !== 'serverless-gpu:batch:Function') children.push({ name: child, opts });
      return undefined;
    };
    const component = new BatchFunction(name, { spec: fnSpec, image: IMAGE, environment, region: 'us-east-1', ...extra }, { transformations: [record] });
    await settle();
    const resources = mock.resources.filter(ownedBy(name));
    const { all, one } = selectors(resources);
    return { component, resources, children, all, one, container: () => JSON.parse(one(JOB_DEFINITION).containerProperties) };
  }

  const rejection = constructorError;

  const requirements = (container: any): Record<string, string> =>
    Object.fromEntries(container.resourceRequirements.map((r: { type: string; value: string }) => [r.type, r.value]));
  const envOf = (container: any): Record<string, string> =>
    Object.fromEntries(container.environment.map((e: { name: string; value: string }) => [e.name, e.value]));
  /** The job role's inline policy, parsed. */
  const jobRolePolicy = (deployed: Deployed): any => {
    const jobRole = deployed.resources.find((r) => r.type === ROLE);
    assert.ok(jobRole);
    const policies = deployed.all(ROLE_POLICY).filter((p) => p.role === `${jobRole.name}-id`);
    assert.equal(policies.length, 1);
    return JSON.parse(policies[0].policy);
  };

  describe('resources', () => {
    it('requests one GPU and the default 4 vCPUs and 15 GiB for an L4', async () => {
      const { container } = await deploy(spec());
      assert.deepEqual(container().resourceRequirements, [
        { type: 'GPU', value: '1' },
        { type: 'VCPU', value: '4' },
        { type: 'MEMORY', value: '15360' },
      ]);
    });

    it('passes gpu.count, cpu and memory through, rounding CPU up to whole vCPUs', async () => {
      const { container } = await deploy(spec({ gpu: { type: 'L4', count: 4 }, cpu: 23.5, memoryMiB: 100_000 }));
      assert.deepEqual(requirements(container()), { GPU: '4', VCPU: '24', MEMORY: '100000' });
    });

    it('requests no GPU for a CPU-only spec', async () => {
      const { container } = await deploy(spec({ gpu: undefined }));
      assert.deepEqual(requirements(container()), { VCPU: '1', MEMORY: '2048' });
    });

    it('is an EC2 container job with shared memory, awslogs and propagated tags', async () => {
      const { one, container } = await deploy(spec());
      const definition = one(JOB_DEFINITION);
      assert.equal(definition.type, 'container');
      assert.deepEqual(definition.platformCapabilities, ['EC2']);
      assert.equal(definition.propagateTags, true);
      assert.deepEqual(definition.tags, { 'managed-by': 'serverless-gpu', service: 'image-search', stage: 'dev', function: 'embed' });
      assert.equal(container().image, IMAGE);
      assert.equal(container().command, undefined, 'the image entry point runs');
      assert.deepEqual(container().linuxParameters, { sharedMemorySize: 2048 });
      assert.deepEqual(container().logConfiguration, { logDriver: 'awslogs' });
    });
  });

  describe('retries and timeout', () => {
    it('makes one attempt by default, retrying lost hosts and exit 75 only', async () => {
      const { one } = await deploy(spec());
      assert.deepEqual(one(JOB_DEFINITION).retryStrategy, {
        attempts: 1,
        evaluateOnExits: [
          { onStatusReason: 'Host EC2*', action: 'retry' },
          { onExitCode: '75', action: 'retry' },
          { onReason: '*', action: 'exit' },
        ],
      });
    });

    it('makes retries + 1 attempts, at most 10', async () => {
      assert.equal((await deploy(spec({ retries: 3 }))).one(JOB_DEFINITION).retryStrategy.attempts, 4);
      assert.equal((await deploy(spec({ retries: 20 }))).one(JOB_DEFINITION).retryStrategy.attempts, 10);
    });

    it('times attempts out after the spec timeout in whole seconds, at least 60', async () => {
      assert.deepEqual((await deploy(spec({ timeoutMs: 90_500 }))).one(JOB_DEFINITION).timeout, { attemptDurationSeconds: 91 });
      assert.deepEqual((await deploy(spec({ timeoutMs: 5_000 }))).one(JOB_DEFINITION).timeout, { attemptDurationSeconds: 60 });
    });
  });

  describe('environment and secrets', () => {
    it('sets the contract variables and the spec env, sorted by name', async () => {
      const { container } = await deploy(spec({ env: { MODEL: 'clip', LOG_LEVEL: 'debug' } }));
      const names = container().environment.map((e: { name: string }) => e.name);
      assert.deepEqual(names, [...names].sort());
      assert.deepEqual(envOf(container()), {
        AWS_REGION: 'us-east-1',
        LOG_LEVEL: 'debug',
        MODEL: 'clip',
        SGPU_CALL_BUCKET: 'acme-calls',
        SGPU_CALL_PREFIX: 'calls/image-search/dev/embed/',
        SGPU_MODE: 'batch',
      });
    });

    it('does not let the spec env override the contract', async () => {
      const { container } = await deploy(spec({ env: { SGPU_MODE: 'http' } }));
      assert.equal(envOf(container()).SGPU_MODE, 'batch');
    });

    it('tells the job where its weights are', async () => {
      const { container } = await deploy(spec({ weights: { prefix: 'models/clip/' } }), { weightsBucket: 'acme-weights' });
      const env = envOf(container());
      assert.equal(env.SGPU_WEIGHTS_BUCKET, 'acme-weights');
      assert.equal(env.SGPU_WEIGHTS_PREFIX, 'models/clip');
      assert.equal(env.SGPU_WEIGHTS_PATH, CONTAINER_WEIGHTS_PATH);
    });

    it('passes secrets as Secrets Manager ARNs, never values', async () => {
      const { container } = await deploy(spec({ secrets: ['HF_TOKEN', 'API_KEY'] }));
      assert.deepEqual(container().secrets, [
        { name: 'HF_TOKEN', valueFrom: `arn:aws:secretsmanager:us-east-1:${ACCOUNT}:secret:HF_TOKEN` },
        { name: 'API_KEY', valueFrom: `arn:aws:secretsmanager:us-east-1:${ACCOUNT}:secret:API_KEY` },
      ]);
      assert.equal(envOf(container()).HF_TOKEN, undefined);
    });

    it('runs as its own job role under the environment execution role', async () => {
      const { container, resources, component } = await deploy(spec());
      const jobRole = resources.find((r) => r.type === ROLE);
      assert.ok(jobRole);
      assert.equal(JSON.parse(String(jobRole.inputs.assumeRolePolicy)).Statement[0].Principal.Service, 'ecs-tasks.amazonaws.com');
      const jobRoleArn = `arn:aws:mock:us-east-1:${ACCOUNT}:${jobRole.name}`;
      assert.equal(container().jobRoleArn, jobRoleArn);
      assert.equal(await valueOf(component.jobRoleArn), jobRoleArn);
      assert.equal(container().executionRoleArn, `arn:aws:mock:us-east-1:${ACCOUNT}:${executionRole().name}`);
    });
  });

  describe('least privilege', () => {
    it('reads the weights prefix, reads and writes the call prefix, and reads its secrets, nothing else', async () => {
      const deployed = await deploy(spec({ weights: { prefix: 'models/clip' }, secrets: ['HF_TOKEN'] }), { weightsBucket: 'acme-weights' });
      assert.deepEqual(jobRolePolicy(deployed), {
        Version: '2012-10-17',
        Statement: [
          {
            Sid: 'ListWeights',
            Effect: 'Allow',
            Action: 's3:ListBucket',
            Resource: 'arn:aws:s3:::acme-weights',
            Condition: { StringLike: { 's3:prefix': ['models/clip/*', 'models/clip'] } },
          },
          { Sid: 'ReadWeights', Effect: 'Allow', Action: 's3:GetObject', Resource: 'arn:aws:s3:::acme-weights/models/clip/*' },
          {
            Sid: 'ListCalls',
            Effect: 'Allow',
            Action: 's3:ListBucket',
            Resource: 'arn:aws:s3:::acme-calls',
            Condition: { StringLike: { 's3:prefix': ['calls/image-search/dev/embed/*'] } },
          },
          {
            Sid: 'ReadWriteCalls',
            Effect: 'Allow',
            Action: ['s3:GetObject', 's3:PutObject'],
            Resource: 'arn:aws:s3:::acme-calls/calls/image-search/dev/embed/*',
          },
          {
            Sid: 'ReadSecrets',
            Effect: 'Allow',
            Action: 'secretsmanager:GetSecretValue',
            Resource: [`arn:aws:secretsmanager:us-east-1:${ACCOUNT}:secret:HF_TOKEN-*`],
          },
        ],
      });
    });

    it('has no wildcard resources or actions and never writes weights', async () => {
      const deployed = await deploy(spec({ weights: { prefix: 'models/clip' }, secrets: ['HF_TOKEN'] }), { weightsBucket: 'acme-weights' });
      for (const statement of jobRolePolicy(deployed).Statement) {
        const actions: string[] = [statement.Action].flat();
        const resources: string[] = [statement.Resource].flat();
        assert.equal(statement.Effect, 'Allow');
        for (const action of actions) assert.doesNotMatch(action, /\*/, statement.Sid);
        for (const resource of resources) {
          assert.notEqual(resource, '*', statement.Sid);
          assert.doesNotMatch(resource, /^arn:aws:s3:::[^/]+\/\*$/, `${statement.Sid}: not a whole bucket`);
        }
        if (resources.some((r) => r.startsWith('arn:aws:s3:::acme-weights'))) assert.ok(!actions.includes('s3:PutObject'), 'weights are read-only');
      }
    });

    it('grants no weights or secrets access when the spec has none', async () => {
      const deployed = await deploy(spec());
      assert.deepEqual(
        jobRolePolicy(deployed).Statement.map((s: { Sid: string }) => s.Sid),
        ['ListCalls', 'ReadWriteCalls'],
      );
      assert.equal(deployed.all(ROLE_POLICY).length, 1, 'no execution-role policy without secrets');
    });

    it('lets the execution role read exactly the secrets it injects', async () => {
      const deployed = await deploy(spec({ secrets: ['HF_TOKEN'] }));
      const policies = deployed.all(ROLE_POLICY).filter((p) => p.role === executionRole().name);
      assert.equal(policies.length, 1);
      assert.deepEqual(JSON.parse(policies[0].policy).Statement, [
        { Sid: 'ReadSecrets', Effect: 'Allow', Action: 'secretsmanager:GetSecretValue', Resource: [`arn:aws:secretsmanager:us-east-1:${ACCOUNT}:secret:HF_TOKEN-*`] },
      ]);
    });

    it('takes the weights bucket from the spec when no weightsBucket is passed', async () => {
      const deployed = await deploy(spec({ weights: { prefix: 'models', bucket: 'spec-weights' } }));
      assert.equal(jobRolePolicy(deployed).Statement[1].Resource, 'arn:aws:s3:::spec-weights/models/*');
    });
  });

  describe('outputs', () => {
    it('exposes the job definition, queue, call bucket and prefix', async () => {
      const { component, resources } = await deploy(spec());
      const definition = resources.find((r) => r.type === JOB_DEFINITION);
      assert.ok(definition);
      assert.equal(await valueOf(component.jobDefinitionArn), `arn:aws:mock:us-east-1:${ACCOUNT}:${definition.name}`);
      assert.equal(await valueOf(component.jobQueueArn), await valueOf(environment.jobQueueArn));
      assert.equal(await valueOf(component.callBucket), 'acme-calls');
      assert.equal(await valueOf(component.callPrefix), 'calls/image-search/dev/embed/');
    });

    it('registers every child under the component', async () => {
      const { children, component, resources } = await deploy(spec({ secrets: ['HF_TOKEN'], weights: { prefix: 'm' } }), { weightsBucket: 'w' });
      assert.equal(children.length, resources.length - 1, 'every registered child went through the component');
      for (const child of children) assert.equal(child.opts.parent, component, `${child.name} is parented to the component`);
      assert.ok(resources.some((r) => r.type === 'serverless-gpu:batch:Function'));
    });
  });

  describe('rejections', () => {
    const rejects = async (name: string, fnSpec: FunctionSpec, pattern: RegExp, extra: Partial<BatchFunctionArgs> = {}): Promise<void> => {
      const error = rejection(() => new BatchFunction(name, { spec: fnSpec, image: IMAGE, environment, region: 'us-east-1', ...extra }));
      assert.match(error.message, pattern);
      assert.match(error.message, /^functions\.embed: cannot run on batch: /);
      await settle();
      assert.deepEqual(mock.resources.filter(ownedBy(name)), [], 'nothing registered');
    };

    it('rejects minInstances > 0', () => rejects('bfn-warm', spec({ minInstances: 1 }), /minInstances is not supported on batch/));
    it('rejects an unknown GPU', () => rejects('bfn-gpu', spec({ gpu: { type: 'TPU', count: 1 } }), /gpu\.type "TPU" is not offered on batch; choose one of T4/));
    it('rejects a job no instance fits', () => rejects('bfn-big', spec({ gpu: { type: 'H100', count: 16 } }), /gpu\.count 16 is more than any H100 instance has \(at most 8\)/));
    it('rejects weights without a bucket', () => rejects('bfn-weights', spec({ weights: { prefix: 'models' } }), /weights needs a bucket/));
    it('lists every problem', () =>
      rejects('bfn-all', spec({ minInstances: 1, cpu: 999, weights: { prefix: 'models' } }), /minInstances .*; cpu 999 is more .*; weights needs a bucket/));
  });
});

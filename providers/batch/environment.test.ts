import assert from 'node:assert/strict';
import * as pulumi from '@pulumi/pulumi';
import { mockPulumi, settle, valueOf, type PulumiMock, type RegisteredResource, ownedBy, selectors, constructorError } from '../pulumi/testing';
import { BatchEnvironment, CAPACITY_WAIT_SECONDS, type BatchEnvironmentArgs } from './environment';

const CE = 'aws:batch/computeEnvironment:ComputeEnvironment';
const QUEUE = 'aws:batch/jobQueue:JobQueue';
const ROLE = 'aws:iam/role:Role';
const ATTACHMENT = 'aws:iam/rolePolicyAttachment:RolePolicyAttachment';
const PROFILE = 'aws:iam/instanceProfile:InstanceProfile';
const SECURITY_GROUP = 'aws:ec2/securityGroup:SecurityGroup';
const REPOSITORY = 'aws:ecr/repository:Repository';
const LIFECYCLE = 'aws:ecr/lifecyclePolicy:LifecyclePolicy';
const BUCKET = 'aws:s3/bucket:Bucket';

/* eslint-disable @typescript-eslint/no-explicit-any -- recorded inputs are plain JSON */
interface Deployed {
  readonly component: BatchEnvironment;
  readonly resources: RegisteredResource[];
  readonly children: { name: string; opts: pulumi.ResourceOptions }[];
  all(type: string): any[];
  one(type: string): any;
}

const trustOf = (role: any): string => JSON.parse(role.assumeRolePolicy).Statement[0].Principal.Service;

describe('BatchEnvironment', function () {
  let mock: PulumiMock;
  let counter = 0;

  before(async () => {
    mock = await mockPulumi({ 'aws:region': 'us-east-1' });
  });

  const args = (extra: Partial<BatchEnvironmentArgs> = {}): BatchEnvironmentArgs => ({
    service: 'image-search',
    stage: 'dev',
    instanceTypes: ['g6.xlarge', 'g6.2xlarge'],
    ...extra,
  });

  async function deploy(extra: Partial<BatchEnvironmentArgs> = {}): Promise<Deployed> {
    const name = `benv${(counter += 1)}`;
    const children: Deployed['children'] = [];
    const record: pulumi.ResourceTransformation = ({ type, name: child, opts }) => {
      if (type !== 'serverless-gpu:batch:Environment') children.push({ name: child, opts });
      return undefined;
    };
    const component = new BatchEnvironment(name, args(extra), { transformations: [record] });
    await settle();
    const resources = mock.resources.filter(ownedBy(name));
    const { all, one } = selectors(resources);
    return { component, resources, children, all, one };
  }

  const rejection = constructorError;

  describe('the compute environment', () => {
    it('is a managed EC2 environment on the AL2023 NVIDIA image, scaling from zero', async () => {
      const { one } = await deploy();
      const ce = one(CE);
      assert.equal(ce.type, 'MANAGED');
      assert.equal(ce.computeResources.type, 'EC2');
      assert.equal(ce.computeResources.allocationStrategy, 'BEST_FIT_PROGRESSIVE');
      assert.deepEqual(ce.computeResources.ec2Configurations, [{ imageType: 'ECS_AL2023_NVIDIA' }]);
      assert.deepEqual(ce.computeResources.instanceTypes, ['g6.xlarge', 'g6.2xlarge']);
      assert.equal(ce.computeResources.minVcpus, 0);
      assert.equal(ce.computeResources.maxVcpus, 64);
    });

    it('takes maxVcpus from the args', async () => {
      const { one } = await deploy({ maxVcpus: 256 });
      assert.equal(one(CE).computeResources.maxVcpus, 256);
    });

    it('uses the instance PROFILE, not the role, as instanceRole', async () => {
      const { one, resources } = await deploy();
      const profile = resources.find((r) => r.type === PROFILE);
      assert.ok(profile);
      assert.equal(one(CE).computeResources.instanceRole, `arn:aws:mock:us-east-1:123456789012:${profile.name}`);
      const instanceRole = resources.find((r) => r.type === ROLE && trustOf(r.inputs) === 'ec2.amazonaws.com');
      assert.ok(instanceRole);
      assert.equal(profile.inputs.role, instanceRole.name, 'the profile wraps the ECS instance role');
    });

    it('on spot, uses SPOT_PRICE_CAPACITY_OPTIMIZED and no spot fleet role', async () => {
      const { one } = await deploy({ spot: true });
      const { computeResources } = one(CE);
      assert.equal(computeResources.type, 'SPOT');
      assert.equal(computeResources.allocationStrategy, 'SPOT_PRICE_CAPACITY_OPTIMIZED');
      assert.equal('spotIamFleetRole' in computeResources, false);
    });

    it('runs under the Batch service role and depends on the policy attachments', async () => {
      const { one, resources, children } = await deploy();
      const serviceRole = resources.find((r) => r.type === ROLE && trustOf(r.inputs) === 'batch.amazonaws.com');
      assert.ok(serviceRole);
      assert.equal(one(CE).serviceRole, `arn:aws:mock:us-east-1:123456789012:${serviceRole.name}`);
      const ce = children.find((c) => c.name.endsWith('-compute'));
      assert.ok(ce);
      const dependsOn = ce.opts.dependsOn as pulumi.Resource[];
      assert.equal(dependsOn.length, 2);
      const policies = await Promise.all(dependsOn.map((d) => valueOf((d as unknown as { policyArn: pulumi.Output<string> }).policyArn)));
      assert.deepEqual(policies.sort(), [
        'arn:aws:iam::aws:policy/service-role/AWSBatchServiceRole',
        'arn:aws:iam::aws:policy/service-role/AmazonEC2ContainerServiceforEC2Role',
      ]);
    });
  });

  describe('networking', () => {
    it('launches in the default VPC subnets with an egress-only security group when no subnets are given', async () => {
      const { one, resources } = await deploy();
      const { computeResources } = one(CE);
      assert.deepEqual(computeResources.subnets, ['subnet-mock-a', 'subnet-mock-b']);
      const group = one(SECURITY_GROUP);
      assert.equal(group.vpcId, 'vpc-mock');
      assert.equal(group.ingress, undefined);
      assert.deepEqual(group.egress, [{ protocol: '-1', fromPort: 0, toPort: 0, cidrBlocks: ['0.0.0.0/0'] }]);
      const groupName = resources.find((r) => r.type === SECURITY_GROUP)?.name;
      assert.deepEqual(computeResources.securityGroupIds, [`${groupName}-id`]);
    });

    it('uses the configured subnets, and an egress-only group when none is configured', async () => {
      const { one } = await deploy({ subnets: ['subnet-1', 'subnet-2'] });
      assert.deepEqual(one(CE).computeResources.subnets, ['subnet-1', 'subnet-2']);
      assert.match(one(CE).computeResources.securityGroupIds[0], /-instances-id$/);
    });

    it('uses the configured subnets and security groups as they are', async () => {
      const { one, all } = await deploy({ subnets: ['subnet-1'], securityGroups: ['sg-1'] });
      assert.deepEqual(one(CE).computeResources.subnets, ['subnet-1']);
      assert.deepEqual(one(CE).computeResources.securityGroupIds, ['sg-1']);
      assert.equal(all(SECURITY_GROUP).length, 0);
    });
  });

  describe('roles', () => {
    it('creates the Batch service, ECS instance and task execution roles with their managed policies', async () => {
      const { all, resources } = await deploy();
      const roles = resources.filter((r) => r.type === ROLE);
      const attached = Object.fromEntries(
        roles.map((role) => [trustOf(role.inputs), all(ATTACHMENT).filter((a) => a.role === role.name).map((a) => a.policyArn)]),
      );
      assert.deepEqual(attached, {
        'batch.amazonaws.com': ['arn:aws:iam::aws:policy/service-role/AWSBatchServiceRole'],
        'ec2.amazonaws.com': ['arn:aws:iam::aws:policy/service-role/AmazonEC2ContainerServiceforEC2Role'],
        'ecs-tasks.amazonaws.com': ['arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy'],
      });
    });

    it('exposes the execution role', async () => {
      const { component, resources } = await deploy();
      const execution = resources.find((r) => r.type === ROLE && trustOf(r.inputs) === 'ecs-tasks.amazonaws.com');
      assert.ok(execution);
      assert.equal(await valueOf(component.executionRoleArn), `arn:aws:mock:us-east-1:123456789012:${execution.name}`);
      assert.equal(await valueOf(component.executionRoleName), execution.name);
    });
  });

  describe('the job queue', () => {
    it('is enabled and wired to the compute environment', async () => {
      const { one, resources, component } = await deploy();
      const ce = resources.find((r) => r.type === CE);
      assert.ok(ce);
      const queue = one(QUEUE);
      assert.equal(queue.state, 'ENABLED');
      assert.equal(queue.priority, 1);
      assert.deepEqual(queue.computeEnvironmentOrders, [{ order: 1, computeEnvironment: `arn:aws:mock:us-east-1:123456789012:${ce.name}` }]);
      assert.equal(await valueOf(component.computeEnvironmentArn), `arn:aws:mock:us-east-1:123456789012:${ce.name}`);
      assert.match(await valueOf(component.jobQueueArn), /-queue$/);
    });

    it('cancels jobs stuck RUNNABLE for lack of capacity after 4 hours', async () => {
      const { one } = await deploy();
      const actions = one(QUEUE).jobStateTimeLimitActions as any[];
      const capacity = actions.find((a) => a.reason === 'CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY');
      assert.deepEqual(capacity, { state: 'RUNNABLE', action: 'CANCEL', maxTimeSeconds: 14_400, reason: 'CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY' });
      assert.equal(CAPACITY_WAIT_SECONDS, 14_400);
      for (const action of actions) {
        assert.equal(action.state, 'RUNNABLE');
        assert.equal(action.action, 'CANCEL');
        assert.ok(action.maxTimeSeconds >= 600 && action.maxTimeSeconds <= 86_400, `${action.reason}: 600..86400 seconds`);
      }
      assert.deepEqual(actions.map((a) => a.reason).sort(), [
        'CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY',
        'MISCONFIGURATION:COMPUTE_ENVIRONMENT_MAX_RESOURCE',
        'MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT',
      ]);
    });
  });

  describe('the image repository', () => {
    it('is mutable, scanned on push and deletable with images', async () => {
      const { one, component, resources } = await deploy();
      const repository = one(REPOSITORY);
      assert.equal(repository.forceDelete, true);
      assert.equal(repository.imageTagMutability, 'MUTABLE');
      assert.deepEqual(repository.imageScanningConfiguration, { scanOnPush: true });
      const name = resources.find((r) => r.type === REPOSITORY)?.name;
      assert.equal(await valueOf(component.repositoryUrl), `123456789012.dkr.ecr.us-east-1.amazonaws.com/${name}`);
    });

    it('expires untagged images after 7 days and keeps the last 20, rules sorted by priority', async () => {
      const { one, resources } = await deploy();
      const lifecycle = one(LIFECYCLE);
      assert.equal(lifecycle.repository, resources.find((r) => r.type === REPOSITORY)?.name);
      const policy = typeof lifecycle.policy === 'string' ? JSON.parse(lifecycle.policy) : lifecycle.policy;
      const priorities = policy.rules.map((r: any) => r.rulePriority);
      assert.deepEqual(priorities, [...priorities].sort((a: number, b: number) => a - b));
      assert.deepEqual(
        policy.rules.map((r: any) => ({ selection: r.selection, action: r.action })),
        [
          { selection: { tagStatus: 'untagged', countType: 'sinceImagePushed', countUnit: 'days', countNumber: 7 }, action: { type: 'expire' } },
          { selection: { tagStatus: 'any', countType: 'imageCountMoreThan', countNumber: 20 }, action: { type: 'expire' } },
        ],
      );
    });
  });

  describe('the call bucket', () => {
    it('is created, destroyable with its objects, when none is given', async () => {
      const { one, component, resources } = await deploy();
      assert.equal(one(BUCKET).forceDestroy, true);
      const name = resources.find((r) => r.type === BUCKET)?.name;
      assert.equal(await valueOf(component.callBucket), `${name}-mock`);
      assert.equal(await valueOf(component.callBucketArn), `arn:aws:mock:us-east-1:123456789012:${name}`);
    });

    it('is the given one, and nothing is created, when callBucket is set', async () => {
      const { all, component } = await deploy({ callBucket: 'acme-calls' });
      assert.equal(all(BUCKET).length, 0);
      assert.equal(await valueOf(component.callBucket), 'acme-calls');
      assert.equal(await valueOf(component.callBucketArn), 'arn:aws:s3:::acme-calls');
    });
  });

  describe('the component', () => {
    it('registers every child under the component', async () => {
      const { children, component, resources } = await deploy();
      assert.equal(children.length, resources.length - 1, 'every registered child went through the component');
      for (const child of children) assert.equal(child.opts.parent, component, `${child.name} is parented to the component`);
      assert.ok(resources.some((r) => r.type === 'serverless-gpu:batch:Environment'));
    });

    it('tags what takes tags with the service and stage', async () => {
      const { resources } = await deploy();
      const tagged = resources.filter((r) => r.type === CE || r.type === QUEUE || r.type === ROLE || r.type === REPOSITORY || r.type === BUCKET);
      assert.ok(tagged.length >= 7);
      for (const resource of tagged) {
        assert.deepEqual(resource.inputs.tags, { 'managed-by': 'serverless-gpu', service: 'image-search', stage: 'dev' }, resource.name);
      }
    });
  });

  describe('rejections', () => {
    it('rejects empty instanceTypes before creating anything', async () => {
      const error = rejection(() => new BatchEnvironment('benv-empty', args({ instanceTypes: [] })));
      assert.match(error.message, /instanceTypes must not be empty/);
      await settle();
      assert.equal(mock.resources.filter(ownedBy('benv-empty')).length, 0);
    });

    it('rejects securityGroups without subnets before creating anything', async () => {
      const error = rejection(() => new BatchEnvironment('benv-groups', args({ securityGroups: ['sg-1'] })));
      assert.match(error.message, /securityGroups needs subnets/);
      await settle();
      assert.equal(mock.resources.filter(ownedBy('benv-groups')).length, 0);
    });
  });
});

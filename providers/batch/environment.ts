/**
 * What every batch function of a service shares: a GPU compute environment and its job queue, the
 * roles Batch and ECS need, an image repository and the bucket calls go through. One per service and
 * stage; each function adds a job definition on top (see function.ts).
 */
import * as pulumi from '@pulumi/pulumi';
import * as aws from '@pulumi/aws';
import { ConfigError } from '../../plugin/errors';
import { commonLabels } from '../pulumi/args';

export interface BatchEnvironmentArgs {
  /** The Serverless service name, for tags. */
  readonly service: string;
  /** The stage, for tags. */
  readonly stage: string;
  /** EC2 instance types or families the compute environment may launch, e.g. `['g6.xlarge', 'g5']`. Must not be empty. */
  readonly instanceTypes: string[];
  /** The most vCPUs running at once across all jobs (default 64). Instances scale down to zero when idle. */
  readonly maxVcpus?: number;
  /** Run on Spot instances (cheaper, may be reclaimed; reclaimed jobs are retried). Default on-demand. */
  readonly spot?: boolean;
  /** Subnets to launch instances in. Default: every subnet of the account's default VPC. */
  readonly subnets?: string[];
  /** Security groups for the instances (needs `subnets`). Default: a group allowing egress only. */
  readonly securityGroups?: string[];
  /** An existing bucket (name) for calls' inputs and outputs. Default: a bucket created here. */
  readonly callBucket?: string;
}

export const DEFAULT_MAX_VCPUS = 64;
/** How long a job may wait for capacity (GPU quota, no instances in the zones) before Batch cancels it. */
export const CAPACITY_WAIT_SECONDS = 4 * 60 * 60;
/** How long a job that can never be placed (larger than any instance or than maxVcpus) may block the queue. */
export const MISFIT_WAIT_SECONDS = 10 * 60;

/** Tags for what a service and stage share: commonLabels without the function. */
export function environmentTags(service: string, stage: string): Record<string, string> {
  const { function: _function, ...tags } = commonLabels({ service, stage, name: '' });
  return tags;
}

/** A trust policy letting one AWS service assume a role. */
export function assumedBy(service: string): string {
  return JSON.stringify({
    Version: '2012-10-17',
    Statement: [{ Effect: 'Allow', Principal: { Service: service }, Action: 'sts:AssumeRole' }],
  });
}

function rejectConflicts(name: string, args: BatchEnvironmentArgs): void {
  const where = `batch environment ${name}`;
  if (args.instanceTypes.length === 0) {
    throw new ConfigError(where, 'instanceTypes must not be empty: no batch function asked for an instance type Batch can launch');
  }
  if (args.securityGroups?.length && !args.subnets?.length) {
    throw new ConfigError(where, 'securityGroups needs subnets: security groups belong to a VPC, so name the subnets to launch in too (provider.aws.subnets)');
  }
  if (args.maxVcpus !== undefined && !(Number.isInteger(args.maxVcpus) && args.maxVcpus >= 1)) {
    throw new ConfigError(where, `maxVcpus must be a positive integer, got ${args.maxVcpus}`);
  }
}

/**
 * Where instances launch: the given subnets, or every subnet of the default VPC; the given security
 * groups, or one allowing egress only (instances pull from ECR and S3 over the internet).
 */
function network(
  name: string,
  args: BatchEnvironmentArgs,
  tags: Record<string, string>,
  parent: pulumi.Resource,
): { subnets: pulumi.Input<string[]>; securityGroupIds: pulumi.Input<pulumi.Input<string>[]> } {
  if (args.subnets?.length && args.securityGroups?.length) return { subnets: args.subnets, securityGroupIds: args.securityGroups };
  let subnets: pulumi.Input<string[]>;
  let vpcId: pulumi.Input<string>;
  if (args.subnets?.length) {
    subnets = args.subnets;
    vpcId = aws.ec2.getSubnetOutput({ id: args.subnets[0] }, { parent }).vpcId;
  } else {
    vpcId = aws.ec2.getVpcOutput({ default: true }, { parent }).id;
    subnets = aws.ec2.getSubnetsOutput({ filters: [{ name: 'vpc-id', values: [vpcId] }] }, { parent }).ids;
  }
  const group = new aws.ec2.SecurityGroup(
    `${name}-instances`,
    {
      vpcId,
      description: 'serverless-gpu Batch instances (egress only)',
      egress: [{ protocol: '-1', fromPort: 0, toPort: 0, cidrBlocks: ['0.0.0.0/0'] }],
      tags,
    },
    { parent },
  );
  return { subnets, securityGroupIds: [group.id] };
}

export class BatchEnvironment extends pulumi.ComponentResource {
  /** The queue functions submit jobs to. */
  readonly jobQueueArn: pulumi.Output<string>;
  readonly computeEnvironmentArn: pulumi.Output<string>;
  /** The role ECS uses to pull images, write logs and read the secrets job definitions name. */
  readonly executionRoleArn: pulumi.Output<string>;
  readonly executionRoleName: pulumi.Output<string>;
  /** Name of the bucket calls' inputs and outputs go through. */
  readonly callBucket: pulumi.Output<string>;
  readonly callBucketArn: pulumi.Output<string>;
  /** Where the functions' images are pushed: `<account>.dkr.ecr.<region>.amazonaws.com/<name>`. */
  readonly repositoryUrl: pulumi.Output<string>;

  constructor(name: string, args: BatchEnvironmentArgs, opts?: pulumi.ComponentResourceOptions) {
    rejectConflicts(name, args);
    super('serverless-gpu:batch:Environment', name, {}, opts);
    const parent = { parent: this };
    const tags = environmentTags(args.service, args.stage);

    const { subnets, securityGroupIds } = network(name, args, tags, this);

    const serviceRole = new aws.iam.Role(`${name}-service`, { assumeRolePolicy: assumedBy('batch.amazonaws.com'), tags }, parent);
    const serviceAttachment = new aws.iam.RolePolicyAttachment(
      `${name}-service`,
      { role: serviceRole.name, policyArn: aws.iam.ManagedPolicy.AWSBatchServiceRole },
      parent,
    );
    const instanceRole = new aws.iam.Role(`${name}-instance`, { assumeRolePolicy: assumedBy('ec2.amazonaws.com'), tags }, parent);
    const instanceAttachment = new aws.iam.RolePolicyAttachment(
      `${name}-instance`,
      { role: instanceRole.name, policyArn: aws.iam.ManagedPolicy.AmazonEC2ContainerServiceforEC2Role },
      parent,
    );
    const instanceProfile = new aws.iam.InstanceProfile(`${name}-instance`, { role: instanceRole.name, tags }, parent);
    const executionRole = new aws.iam.Role(`${name}-execution`, { assumeRolePolicy: assumedBy('ecs-tasks.amazonaws.com'), tags }, parent);
    new aws.iam.RolePolicyAttachment(
      `${name}-execution`,
      { role: executionRole.name, policyArn: aws.iam.ManagedPolicy.AmazonECSTaskExecutionRolePolicy },
      parent,
    );

    const computeEnvironment = new aws.batch.ComputeEnvironment(
      `${name}-compute`,
      {
        type: 'MANAGED',
        serviceRole: serviceRole.arn,
        computeResources: {
          type: args.spot ? 'SPOT' : 'EC2',
          // SPOT_* strategies need no spotIamFleetRole (only BEST_FIT does).
          allocationStrategy: args.spot ? 'SPOT_PRICE_CAPACITY_OPTIMIZED' : 'BEST_FIT_PROGRESSIVE',
          instanceTypes: args.instanceTypes,
          minVcpus: 0,
          maxVcpus: args.maxVcpus ?? DEFAULT_MAX_VCPUS,
          // The instance PROFILE, not the role.
          instanceRole: instanceProfile.arn,
          subnets,
          securityGroupIds,
          ec2Configurations: [{ imageType: 'ECS_AL2023_NVIDIA' }],
          tags,
        },
        tags,
      },
      // Otherwise destroy may detach the policies first and leave the environment stuck in DELETING.
      { parent: this, dependsOn: [serviceAttachment, instanceAttachment] },
    );

    const jobQueue = new aws.batch.JobQueue(
      `${name}-queue`,
      {
        state: 'ENABLED',
        priority: 1,
        computeEnvironmentOrders: [{ order: 1, computeEnvironment: computeEnvironment.arn }],
        // A job at the head of the queue that cannot start blocks every job behind it.
        jobStateTimeLimitActions: [
          { state: 'RUNNABLE', action: 'CANCEL', maxTimeSeconds: CAPACITY_WAIT_SECONDS, reason: 'CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY' },
          { state: 'RUNNABLE', action: 'CANCEL', maxTimeSeconds: MISFIT_WAIT_SECONDS, reason: 'MISCONFIGURATION:COMPUTE_ENVIRONMENT_MAX_RESOURCE' },
          { state: 'RUNNABLE', action: 'CANCEL', maxTimeSeconds: MISFIT_WAIT_SECONDS, reason: 'MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT' },
        ],
        tags,
      },
      parent,
    );

    const repository = new aws.ecr.Repository(
      `${name}-images`,
      { forceDelete: true, imageTagMutability: 'MUTABLE', imageScanningConfiguration: { scanOnPush: true }, tags },
      parent,
    );
    new aws.ecr.LifecyclePolicy(
      `${name}-images`,
      {
        repository: repository.name,
        // Sorted by rulePriority: ECR returns them sorted, so any other order diffs forever.
        policy: {
          rules: [
            {
              rulePriority: 1,
              description: 'expire untagged images after 7 days',
              selection: { tagStatus: 'untagged', countType: 'sinceImagePushed', countUnit: 'days', countNumber: 7 },
              action: { type: 'expire' },
            },
            {
              rulePriority: 2,
              description: 'keep the last 20 images',
              selection: { tagStatus: 'any', countType: 'imageCountMoreThan', countNumber: 20 },
              action: { type: 'expire' },
            },
          ],
        },
      },
      parent,
    );

    if (args.callBucket) {
      this.callBucket = pulumi.output(args.callBucket);
      this.callBucketArn = pulumi.output(`arn:aws:s3:::${args.callBucket}`);
    } else {
      const bucket = new aws.s3.Bucket(`${name}-calls`, { forceDestroy: true, tags }, parent);
      this.callBucket = bucket.bucket;
      this.callBucketArn = bucket.arn;
    }
    this.jobQueueArn = jobQueue.arn;
    this.computeEnvironmentArn = computeEnvironment.arn;
    this.executionRoleArn = executionRole.arn;
    this.executionRoleName = executionRole.name;
    this.repositoryUrl = repository.repositoryUrl;
    this.registerOutputs({
      jobQueueArn: this.jobQueueArn,
      computeEnvironmentArn: this.computeEnvironmentArn,
      executionRoleArn: this.executionRoleArn,
      executionRoleName: this.executionRoleName,
      callBucket: this.callBucket,
      callBucketArn: this.callBucketArn,
      repositoryUrl: this.repositoryUrl,
    });
  }
}

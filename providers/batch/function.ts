/**
 * One function on AWS Batch: a job definition on the service's queue (see environment.ts) and a job role
 * that can read the function's weights and its own calls, nothing more.
 *
 * The contract with the runtime: a job runs the image's entry point with `SGPU_MODE=batch`,
 * `SGPU_CALL_BUCKET`, `SGPU_CALL_PREFIX` (`calls/<service>/<stage>/<function>/`) and, with weights,
 * `SGPU_WEIGHTS_BUCKET`, `SGPU_WEIGHTS_PREFIX` and `SGPU_WEIGHTS_PATH`; the caller's SubmitJob adds
 * `SGPU_CALL_ID`. The job reads its input from and writes its result to
 * `s3://<callBucket>/<callPrefix><callId>/`, then exits 0 (success), 1 (the handler threw: not
 * retried) or 75 (a retryable failure).
 */
import * as pulumi from '@pulumi/pulumi';
import * as aws from '@pulumi/aws';
import { ConfigError } from '../../plugin/errors';
import type { FunctionSpec } from '../../plugin/spec';
import { CONTAINER_WEIGHTS_PATH, commonLabels, type FunctionArgs } from '../pulumi/args';
import { assumedBy, type BatchEnvironment } from './environment';
import { batchProblems, jobResources, largestJobMemoryMiB, weightsPrefixOf } from './rules';

export { CPU_FAMILIES, batchProblems, jobInstanceTypes, jobResources, weightsPrefixOf } from './rules';

export interface BatchFunctionArgs extends FunctionArgs {
  /** The service's shared compute environment, queue, roles and call bucket. */
  readonly environment: BatchEnvironment;
  /** The AWS region the stack deploys to, for secret ARNs. */
  readonly region: string;
  /** The bucket (name) holding weights under `spec.weights.prefix`; required when the spec has weights. */
  readonly weightsBucket?: string;
}

/** Shared memory for the container (`/dev/shm`, MiB): PyTorch data loaders and NCCL need more than Docker's 64 MiB. */
export const SHARED_MEMORY_MIB = 2048;
/** Exit code for a failure worth retrying; 1 (the handler threw) is not retried. */
export const RETRYABLE_EXIT_CODE = 75;


/** Where a function's calls live in the call bucket: `calls/<service>/<stage>/<function>/`. */
export function callPrefixOf(spec: Pick<FunctionSpec, 'service' | 'stage' | 'name'>): string {
  return `calls/${spec.service}/${spec.stage}/${spec.name}/`;
}

/** A Secrets Manager secret by name (a partial ARN: Secrets Manager adds a random `-xxxxxx` suffix). */
export function secretArn(region: string, account: string, name: string): string {
  return `arn:aws:secretsmanager:${region}:${account}:secret:${name}`;
}

/** The job role's policy: read the weights prefix, read and write the function's calls, read its secrets. */
export function jobPolicy(input: {
  callBucketArn: string;
  callPrefix: string;
  weights?: { bucketArn: string; prefix: string };
  secretArns: readonly string[];
}): { Version: string; Statement: Record<string, unknown>[] } {
  const statements: Record<string, unknown>[] = [];
  if (input.weights) {
    const { bucketArn, prefix } = input.weights;
    statements.push(
      { Sid: 'ListWeights', Effect: 'Allow', Action: 's3:ListBucket', Resource: bucketArn, Condition: { StringLike: { 's3:prefix': [`${prefix}/*`, prefix] } } },
      { Sid: 'ReadWeights', Effect: 'Allow', Action: 's3:GetObject', Resource: `${bucketArn}/${prefix}/*` },
    );
  }
  statements.push(
    {
      Sid: 'ListCalls',
      Effect: 'Allow',
      Action: 's3:ListBucket',
      Resource: input.callBucketArn,
      Condition: { StringLike: { 's3:prefix': [`${input.callPrefix}*`] } },
    },
    { Sid: 'ReadWriteCalls', Effect: 'Allow', Action: ['s3:GetObject', 's3:PutObject'], Resource: `${input.callBucketArn}/${input.callPrefix}*` },
  );
  if (input.secretArns.length > 0) statements.push(secretsStatement(input.secretArns));
  return { Version: '2012-10-17', Statement: statements };
}

function secretsStatement(secretArns: readonly string[]): Record<string, unknown> {
  return { Sid: 'ReadSecrets', Effect: 'Allow', Action: 'secretsmanager:GetSecretValue', Resource: secretArns.map((arn) => `${arn}-*`) };
}

function rejectProblems(args: BatchFunctionArgs): string | undefined {
  const { spec } = args;
  const problems = batchProblems(spec);
  if (spec.weights && !(args.weightsBucket ?? spec.weights.bucket)) {
    problems.push(`weights needs a bucket: set provider.weights.bucket (weightsBucket) to read "${spec.weights.prefix}" from`);
  }
  if (problems.length > 0) throw new ConfigError(`functions.${spec.name}`, `cannot run on batch: ${problems.join('; ')}`);
  return args.weightsBucket ?? spec.weights?.bucket;
}

export class BatchFunction extends pulumi.ComponentResource {
  readonly jobDefinitionArn: pulumi.Output<string>;
  /** The queue to submit this function's jobs to. */
  readonly jobQueueArn: pulumi.Output<string>;
  readonly callBucket: pulumi.Output<string>;
  /** `calls/<service>/<stage>/<function>/`: inputs and outputs of call `<id>` sit under `<callPrefix><id>/`. */
  readonly callPrefix: pulumi.Output<string>;
  readonly jobRoleArn: pulumi.Output<string>;

  constructor(name: string, args: BatchFunctionArgs, opts?: pulumi.ComponentResourceOptions) {
    const weightsBucket = rejectProblems(args);
    super('serverless-gpu:batch:Function', name, {}, opts);
    const parent = { parent: this };
    const { spec, environment, region } = args;
    const tags = commonLabels(spec);
    const callPrefix = callPrefixOf(spec);
    const weights = spec.weights && weightsBucket ? { bucket: weightsBucket, prefix: weightsPrefixOf(spec.weights) } : undefined;

    const account = spec.secrets.length > 0 ? aws.getCallerIdentityOutput({}, parent).accountId : pulumi.output('');
    const secretArns = account.apply((id) => spec.secrets.map((secret) => secretArn(region, id, secret)));

    const jobRole = new aws.iam.Role(`${name}-job`, { assumeRolePolicy: assumedBy('ecs-tasks.amazonaws.com'), tags }, parent);
    new aws.iam.RolePolicy(
      `${name}-job`,
      {
        role: jobRole.id,
        policy: pulumi.all([environment.callBucketArn, secretArns]).apply(([callBucketArn, arns]) =>
          JSON.stringify(
            jobPolicy({
              callBucketArn,
              callPrefix,
              weights: weights && { bucketArn: `arn:aws:s3:::${weights.bucket}`, prefix: weights.prefix },
              secretArns: arns,
            }),
          ),
        ),
      },
      parent,
    );
    if (spec.secrets.length > 0) {
      // ECS injects `secrets` with the execution role, so it needs these (and only these) too.
      new aws.iam.RolePolicy(
        `${name}-secrets`,
        {
          role: environment.executionRoleName,
          policy: secretArns.apply((arns) => JSON.stringify({ Version: '2012-10-17', Statement: [secretsStatement(arns)] })),
        },
        parent,
      );
    }

    const contractEnv: Record<string, pulumi.Input<string>> = {
      SGPU_MODE: 'batch',
      SGPU_CALL_BUCKET: environment.callBucket,
      SGPU_CALL_PREFIX: callPrefix,
      ...(weights && { SGPU_WEIGHTS_BUCKET: weights.bucket, SGPU_WEIGHTS_PREFIX: weights.prefix, SGPU_WEIGHTS_PATH: CONTAINER_WEIGHTS_PATH }),
      // The version this deploy synced: jobs fetch exactly it, not whatever is current when they start.
      ...(weights && spec.weights?.version && { SGPU_WEIGHTS_VERSION: spec.weights.version }),
    };
    const env: Record<string, pulumi.Input<string>> = { AWS_REGION: region, ...spec.env, ...contractEnv };
    const { vcpus, memoryMiB } = jobResources(spec);

    const jobDefinition = new aws.batch.JobDefinition(
      `${name}-job`,
      {
        type: 'container',
        platformCapabilities: ['EC2'],
        containerProperties: pulumi.jsonStringify({
          image: args.image,
          jobRoleArn: jobRole.arn,
          executionRoleArn: environment.executionRoleArn,
          resourceRequirements: [
            ...(spec.gpu ? [{ type: 'GPU', value: String(spec.gpu.count) }] : []),
            { type: 'VCPU', value: String(vcpus) },
            { type: 'MEMORY', value: String(Math.min(memoryMiB, largestJobMemoryMiB(spec))) },
          ],
          environment: Object.keys(env)
            .sort()
            .map((key) => ({ name: key, value: env[key] })),
          secrets: secretArns.apply((arns) => spec.secrets.map((secret, i) => ({ name: secret, valueFrom: arns[i] }))),
          linuxParameters: { sharedMemorySize: SHARED_MEMORY_MIB },
          logConfiguration: { logDriver: 'awslogs' },
        }),
        retryStrategy: {
          attempts: Math.min(10, spec.retries + 1),
          evaluateOnExits: [
            // The instance went away (Spot reclaim, host failure): always worth another attempt.
            { onStatusReason: 'Host EC2*', action: 'retry' },
            { onExitCode: String(RETRYABLE_EXIT_CODE), action: 'retry' },
            // Anything else, including exit 1 (the handler threw), fails the job.
            { onReason: '*', action: 'exit' },
          ],
        },
        timeout: { attemptDurationSeconds: Math.max(60, Math.ceil(spec.timeoutMs / 1000)) },
        propagateTags: true,
        tags,
      },
      parent,
    );

    this.jobDefinitionArn = jobDefinition.arn;
    this.jobQueueArn = environment.jobQueueArn;
    this.callBucket = environment.callBucket;
    this.callPrefix = pulumi.output(callPrefix);
    this.jobRoleArn = jobRole.arn;
    this.registerOutputs({
      jobDefinitionArn: this.jobDefinitionArn,
      jobQueueArn: this.jobQueueArn,
      callBucket: this.callBucket,
      callPrefix: this.callPrefix,
      jobRoleArn: this.jobRoleArn,
    });
  }
}

/**
 * The bucket a service's large inputs and outputs travel through on Google Cloud (Cloud Run, GKE):
 * each function reads and writes under `<function>/`, and objects expire after a day — a payload is
 * needed only for the call that carries it.
 */
import * as pulumi from '@pulumi/pulumi';
import * as gcp from '@pulumi/gcp';

export interface PayloadBucketArgs {
  /** The project to create the bucket in. */
  readonly project: pulumi.Input<string>;
  /** Its location: the functions' region, so payloads stay near them. */
  readonly region: pulumi.Input<string>;
  /** Days an object is kept; default 1. */
  readonly retentionDays?: number;
}

export class PayloadBucket extends pulumi.ComponentResource {
  /** The bucket's name. */
  readonly bucketName: pulumi.Output<string>;

  constructor(name: string, args: PayloadBucketArgs, opts?: pulumi.ComponentResourceOptions) {
    const retentionDays = args.retentionDays ?? 1;
    if (!Number.isInteger(retentionDays) || retentionDays < 1) throw new Error(`retentionDays must be a positive integer, got ${retentionDays}`);
    super('serverless-gpu:gcp:Payloads', name, {}, opts);
    const bucket = new gcp.storage.Bucket(
      `${name}-bucket`,
      {
        project: args.project,
        location: args.region,
        uniformBucketLevelAccess: true,
        forceDestroy: true,
        lifecycleRules: [{ action: { type: 'Delete' }, condition: { age: retentionDays } }],
        labels: { 'managed-by': 'serverless-gpu', purpose: 'payloads' },
      },
      { parent: this },
    );
    this.bucketName = bucket.name;
    this.registerOutputs({ bucketName: this.bucketName });
  }
}

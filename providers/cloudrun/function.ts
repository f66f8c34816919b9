/**
 * One function on Cloud Run: a service with at most one GPU, run by its own service account, which may
 * read only its weights bucket and its named secrets, and callable only by the members the spec names
 * (`allUsers` only with `public: true`).
 *
 * Shapes follow `gcp.cloudrunv2.Service` in @pulumi/gcp 9.37; GPU rules and limits come from
 * shared/CLOUD_REFERENCE.md §1.2-1.3 and plugin/catalogue.ts.
 */
import * as pulumi from '@pulumi/pulumi';
import * as gcp from '@pulumi/gcp';
import { CLOUD_RUN_GPUS, defaultResources } from '../../plugin/catalogue';
import { ConfigError } from '../../plugin/errors';
import type { FunctionSpec } from '../../plugin/spec';
import { CONTAINER_PORT, CONTAINER_WEIGHTS_PATH, READINESS_PATH, commonLabels, weightsMountDir, type FunctionArgs } from '../pulumi/args';
import { cloudRunProblems, serviceAccountId, serviceNameOf, timeoutSeconds } from './rules';

export { CLOUD_RUN_LIMITS, cloudRunProblems, serviceAccountId, serviceNameOf, timeoutSeconds } from './rules';

/** Startup budget for model load: periodSeconds × failureThreshold = 240 s. */
const STARTUP_PROBE = { periodSeconds: 10, timeoutSeconds: 5, failureThreshold: 24 } as const;
const LIVENESS_PERIOD_SECONDS = 30;
const WEIGHTS_VOLUME = 'weights';

export interface CloudRunFunctionArgs extends FunctionArgs {
  /** The GCP project to deploy into. */
  readonly project: string;
  /** The region, e.g. `us-central1`; it must offer the spec's GPU type. */
  readonly region: string;
  /** The bucket holding the weights under `spec.weights.prefix`; required when the spec has weights (defaults to `spec.weights.bucket`). */
  readonly weightsBucket?: string;
  /** `true` for cheaper, best-effort GPU capacity without zonal redundancy (its own quota). Defaults to `false`. */
  readonly gpuZonalRedundancyDisabled?: boolean;
  /** The bucket large inputs and outputs travel through (see runtime-shim/payload-store.ts): the function's account may read and write it (bucket-level), and uses `<function>/`. */
  readonly payloadBucket?: pulumi.Input<string>;
}



/** The weights bucket, or throws (before anything is created) with every problem of the args. */
function checkArgs(args: CloudRunFunctionArgs): string | undefined {
  const problems = cloudRunProblems(args.spec);
  const weightsBucket = args.weightsBucket ?? args.spec.weights?.bucket;
  if (args.spec.weights && !weightsBucket) {
    problems.push(`weightsBucket is required when weights is set (weights.prefix "${args.spec.weights.prefix}")`);
  }
  if (problems.length > 0) {
    throw new ConfigError(`functions.${args.spec.name}`, `cannot deploy to Cloud Run: ${problems.join('; ')}`);
  }
  return args.spec.weights ? weightsBucket : undefined;
}

/** Plain env, the payload store and secrets (by reference, never their values), sorted by name. */
function containerEnvs(spec: FunctionSpec, payloadStore: pulumi.Input<string> | undefined): gcp.types.input.cloudrunv2.ServiceTemplateContainerEnv[] {
  const plain: gcp.types.input.cloudrunv2.ServiceTemplateContainerEnv[] = Object.entries(spec.env).map(([name, value]) => ({ name, value }));
  if (payloadStore) plain.push({ name: 'SGPU_PAYLOAD_STORE', value: payloadStore });
  const secrets = spec.secrets.map((secret) => ({ name: secret, valueSource: { secretKeyRef: { secret, version: 'latest' } } }));
  return [...plain, ...secrets].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** CPU and memory (the GPU's minimums unless the spec says more), and the GPU itself. */
function containerResources(spec: FunctionSpec): gcp.types.input.cloudrunv2.ServiceTemplateContainerResources {
  const defaults = defaultResources('cloudrun', spec.gpu);
  const limits: Record<string, string> = {
    cpu: String(spec.cpu ?? defaults.cpu),
    memory: `${spec.memoryMiB ?? defaults.memoryMiB}Mi`,
  };
  if (spec.gpu) limits['nvidia.com/gpu'] = '1';
  // Must be explicit once `resources` is set; GPU instances are billed per instance, so CPU stays allocated.
  return { limits, cpuIdle: !spec.gpu, startupCpuBoost: true };
}

function container(spec: FunctionSpec, image: string, payloadStore: pulumi.Input<string> | undefined): gcp.types.input.cloudrunv2.ServiceTemplateContainer {
  const httpGet = { path: READINESS_PATH, port: CONTAINER_PORT };
  return {
    image,
    ports: { containerPort: CONTAINER_PORT, name: 'http1' },
    envs: containerEnvs(spec, payloadStore),
    resources: containerResources(spec),
    startupProbe: { httpGet, ...STARTUP_PROBE },
    livenessProbe: { httpGet, periodSeconds: LIVENESS_PERIOD_SECONDS },
    volumeMounts: spec.weights ? [{ name: WEIGHTS_VOLUME, mountPath: CONTAINER_WEIGHTS_PATH }] : undefined,
  };
}

/** The weights prefix of the bucket, mounted read-only through Cloud Storage FUSE. */
function weightsVolume(bucket: string, prefix: string): gcp.types.input.cloudrunv2.ServiceTemplateVolume {
  const dir = prefix.replace(/^\/+|\/+$/g, '');
  const mountOptions = dir ? ['implicit-dirs', `only-dir=${dir}`] : ['implicit-dirs'];
  return { name: WEIGHTS_VOLUME, gcs: { bucket, readOnly: true, mountOptions } };
}

function template(
  args: CloudRunFunctionArgs,
  serviceAccount: pulumi.Input<string>,
  weightsBucket: string | undefined,
  payloadStore: pulumi.Input<string> | undefined,
): gcp.types.input.cloudrunv2.ServiceTemplate {
  const { spec } = args;
  const gpu = spec.gpu && CLOUD_RUN_GPUS[spec.gpu.type];
  return {
    serviceAccount,
    executionEnvironment: 'EXECUTION_ENVIRONMENT_GEN2',
    scaling: { minInstanceCount: spec.minInstances, maxInstanceCount: spec.maxInstances },
    maxInstanceRequestConcurrency: spec.concurrency,
    timeout: `${timeoutSeconds(spec)}s`,
    nodeSelector: gpu ? { accelerator: gpu.accelerator } : undefined,
    gpuZonalRedundancyDisabled: gpu ? (args.gpuZonalRedundancyDisabled ?? false) : undefined,
    containers: [container(spec, args.image, payloadStore)],
    volumes: weightsBucket && spec.weights ? [weightsVolume(weightsBucket, weightsMountDir(spec.weights))] : undefined,
  };
}

export class CloudRunFunction extends pulumi.ComponentResource {
  /** The service's HTTPS URL. */
  public readonly url: pulumi.Output<string>;
  /** The Cloud Run service's name. */
  public readonly serviceName: pulumi.Output<string>;
  /** The email of the service account the function runs as. */
  public readonly serviceAccountEmail: pulumi.Output<string>;
  /** Where its large inputs and outputs travel (`gs://<bucket>/<function>/`), when it has a payload bucket. */
  public readonly payloadStore: pulumi.Output<string | undefined>;

  constructor(name: string, args: CloudRunFunctionArgs, opts?: pulumi.ComponentResourceOptions) {
    const weightsBucket = checkArgs(args);
    super('serverless-gpu:cloudrun:Function', name, {}, opts);
    const { spec, project, region } = args;

    const account = new gcp.serviceaccount.Account(
      `${name}-sa`,
      { project, accountId: serviceAccountId(spec), displayName: `serverless-gpu ${spec.service}/${spec.stage}/${spec.name}` },
      { parent: this },
    );

    const bindings: pulumi.Resource[] = [];
    if (weightsBucket) {
      bindings.push(
        new gcp.storage.BucketIAMMember(
          `${name}-weights-reader`,
          { bucket: weightsBucket, role: 'roles/storage.objectViewer', member: account.member },
          { parent: this },
        ),
      );
    }
    const payloadStore = args.payloadBucket ? pulumi.interpolate`gs://${args.payloadBucket}/${spec.name}/` : undefined;
    if (args.payloadBucket) {
      bindings.push(
        new gcp.storage.BucketIAMMember(
          `${name}-payloads`,
          { bucket: args.payloadBucket, role: 'roles/storage.objectUser', member: account.member },
          { parent: this },
        ),
      );
    }
    for (const secret of spec.secrets) {
      bindings.push(
        new gcp.secretmanager.SecretIamMember(
          `${name}-secret-${secret}`,
          { project, secretId: secret, role: 'roles/secretmanager.secretAccessor', member: account.member },
          { parent: this },
        ),
      );
    }

    const service = new gcp.cloudrunv2.Service(
      `${name}-service`,
      {
        project,
        location: region,
        name: serviceNameOf(spec),
        deletionProtection: false,
        ingress: 'INGRESS_TRAFFIC_ALL',
        labels: commonLabels(spec),
        template: template(args, account.email, weightsBucket, payloadStore),
      },
      { parent: this, dependsOn: bindings },
    );

    const invokers = new Set(spec.invokers);
    if (spec.public) invokers.add('allUsers');
    for (const member of invokers) {
      new gcp.cloudrunv2.ServiceIamMember(
        `${name}-invoker-${member}`,
        { project, location: region, name: service.name, role: 'roles/run.invoker', member },
        { parent: this },
      );
    }

    this.url = service.uri;
    this.serviceName = service.name;
    this.serviceAccountEmail = account.email;
    this.payloadStore = pulumi.output(payloadStore);
    this.registerOutputs({ url: this.url, serviceName: this.serviceName, serviceAccountEmail: this.serviceAccountEmail, payloadStore: this.payloadStore });
  }
}

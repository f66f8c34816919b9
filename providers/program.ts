/**
 * The Pulumi program of one service and stage: one component per function on its target, plus what the
 * functions of a target share (a GKE cluster and namespace, a Batch environment, an Artifact Registry
 * repository). Run by the Automation API at `sls deploy`, under mocks by `sls gpu plan`, and written
 * out as code by `sls gpu eject` (which declares the same components from the same inputs).
 *
 * Each target's Pulumi package is loaded only when a function uses that target.
 */
import * as pulumi from '@pulumi/pulumi';
import type { ProviderConfig } from '../plugin/config';
import type { FunctionSpec } from '../plugin/spec';
import { resourceName } from './pulumi/args';

export interface ProgramFunction {
  readonly spec: FunctionSpec;
  /** Image by digest (or a placeholder before the first build). */
  readonly image: string;
}

export interface ProgramInput {
  readonly service: string;
  readonly stage: string;
  readonly registry?: string;
  /** The provider settings of serverless.yml, as plugin/config.ts reads them. */
  readonly gcp?: ProviderConfig['gcp'];
  readonly gke?: ProviderConfig['gke'];
  readonly aws?: ProviderConfig['aws'];
  readonly weightsBucket?: string;
  readonly functions: readonly ProgramFunction[];
}

/** What the stack exports per function; the client generator reads it. */
export type FunctionOutputs =
  | {
      target: 'cloudrun';
      url: pulumi.Output<string>;
      serviceName: pulumi.Output<string>;
      region: string;
      project: string;
      payloadStore: pulumi.Output<string | undefined>;
    }
  | {
      target: 'gke';
      address: pulumi.Output<string>;
      serviceName: pulumi.Output<string>;
      namespace: pulumi.Output<string>;
      gateway?: string;
      payloadStore: pulumi.Output<string | undefined>;
    }
  | {
      target: 'batch';
      jobQueueArn: pulumi.Output<string>;
      jobDefinitionArn: pulumi.Output<string>;
      callBucket: pulumi.Output<string>;
      callPrefix: pulumi.Output<string>;
      region: string;
    };

export interface ProgramOutputs {
  functions: Record<string, FunctionOutputs>;
}

/** `<region>-docker.pkg.dev/<project>/<repository>` → the Artifact Registry repository to declare. */
export function artifactRegistryOf(registry: string | undefined): { region: string; project: string; repositoryId: string } | undefined {
  const match = /^([a-z0-9-]+)-docker\.pkg\.dev\/([a-z0-9-]+)\/([a-z0-9._-]+)/.exec(registry ?? '');
  return match ? { region: match[1], project: match[2], repositoryId: match[3] } : undefined;
}

function required<T>(value: T | undefined, field: string, why: string): T {
  if (value === undefined || value === '') throw new Error(`${field} is required: ${why}`);
  return value;
}

/** Declares every component of the service; call inside a Pulumi program (or under mocks). */
export async function declareService(input: ProgramInput): Promise<ProgramOutputs> {
  const byTarget = (target: FunctionSpec['target']): ProgramFunction[] => input.functions.filter((f) => f.spec.target === target);
  const outputs: ProgramOutputs = { functions: {} };
  const cloudrun = byTarget('cloudrun');
  const gke = byTarget('gke');
  const batch = byTarget('batch');

  let payloadBucket: pulumi.Output<string> | undefined;
  if (cloudrun.length > 0 || gke.length > 0) {
    const ar = artifactRegistryOf(input.registry);
    if (ar) {
      const { ArtifactRegistry } = await import('./cloudrun/registry');
      new ArtifactRegistry(resourceName([input.service, 'images']), ar);
    }
    const { PayloadBucket } = await import('./cloudrun/payloads');
    const project = required(input.gcp?.project, 'provider.gcp.project', 'functions on Google Cloud need a project');
    const region = required(input.gcp?.region, 'provider.gcp.region', 'functions on Google Cloud need a region');
    payloadBucket = new PayloadBucket(resourceName([input.service, input.stage, 'payloads']), { project, region }).bucketName;
  }

  if (cloudrun.length > 0) {
    const { CloudRunFunction } = await import('./cloudrun/function');
    const project = required(input.gcp?.project, 'provider.gcp.project', 'Cloud Run functions need a project');
    const region = required(input.gcp?.region, 'provider.gcp.region', 'Cloud Run functions need a region');
    for (const { spec, image } of cloudrun) {
      const fn = new CloudRunFunction(spec.name, {
        spec,
        image,
        project,
        region,
        weightsBucket: input.weightsBucket,
        gpuZonalRedundancyDisabled: input.gcp?.gpuZonalRedundancyDisabled,
        payloadBucket,
      });
      outputs.functions[spec.name] = { target: 'cloudrun', url: fn.url, serviceName: fn.serviceName, region, project, payloadStore: fn.payloadStore };
    }
  }

  if (gke.length > 0) {
    const [{ GkeCluster }, { GkeFunction }, k8s] = await Promise.all([import('./gke/cluster'), import('./gke/function'), import('@pulumi/kubernetes')]);
    const project = required(input.gcp?.project, 'provider.gcp.project', 'GKE functions need a project');
    const region = required(input.gcp?.region, 'provider.gcp.region', 'GKE functions need a region');
    const cluster = new GkeCluster(resourceName([input.service, input.stage]), {
      project,
      region,
      create: input.gke?.createCluster ?? false,
      name: input.gke?.cluster,
      location: input.gke?.location,
    });
    const namespaceName = input.gke?.namespace ?? resourceName([input.service, input.stage]);
    const namespace = new k8s.core.v1.Namespace(
      resourceName([input.service, input.stage, 'ns']),
      { metadata: { name: namespaceName, labels: { 'managed-by': 'serverless-gpu' } } },
      { provider: cluster.provider },
    );
    for (const { spec, image } of gke) {
      const fn = new GkeFunction(spec.name, { spec, image, cluster, namespace: namespace.metadata.name, weightsBucket: input.weightsBucket, payloadBucket });
      outputs.functions[spec.name] = {
        target: 'gke',
        address: fn.address,
        serviceName: fn.serviceName,
        namespace: fn.namespace,
        gateway: input.gke?.gateway,
        payloadStore: fn.payloadStore,
      };
    }
  }

  if (batch.length > 0) {
    const [{ BatchEnvironment }, { BatchFunction, jobInstanceTypes }] = await Promise.all([import('./batch/environment'), import('./batch/function')]);
    const region = required(input.aws?.region, 'provider.aws.region', 'Batch functions need a region');
    const environment = new BatchEnvironment(resourceName([input.service, input.stage]), {
      service: input.service,
      stage: input.stage,
      instanceTypes: [...new Set(batch.flatMap(({ spec }) => jobInstanceTypes(spec)))],
      maxVcpus: input.aws?.maxVcpus,
      spot: input.aws?.spot,
      subnets: input.aws?.subnets ? [...input.aws.subnets] : undefined,
      securityGroups: input.aws?.securityGroups ? [...input.aws.securityGroups] : undefined,
      callBucket: input.aws?.callBucket,
    });
    for (const { spec, image } of batch) {
      const fn = new BatchFunction(spec.name, { spec, image, environment, region, weightsBucket: input.weightsBucket });
      outputs.functions[spec.name] = {
        target: 'batch',
        jobQueueArn: fn.jobQueueArn,
        jobDefinitionArn: fn.jobDefinitionArn,
        callBucket: fn.callBucket,
        callPrefix: fn.callPrefix,
        region,
      };
    }
  }
  return outputs;
}

/**
 * One function on GKE Autopilot: a Deployment of the shim on GPU nodes, a ClusterIP Service in front of
 * it, an HPA, and (with weights) the bucket mounted read-only through Cloud Storage FUSE, read with the
 * pod's own Kubernetes service account (Workload Identity Federation, no Google service account).
 */
import * as pulumi from '@pulumi/pulumi';
import * as gcp from '@pulumi/gcp';
import * as k8s from '@pulumi/kubernetes';
import { ConfigError } from '../../plugin/errors';
import { GKE_ACCELERATORS, defaultResources } from '../../plugin/catalogue';
import { CONTAINER_PORT, CONTAINER_WEIGHTS_PATH, READINESS_PATH, commonLabels, resourceName, weightsMountDir, type FunctionArgs } from '../pulumi/args';
import type { GkeCluster } from './cluster';
import { gkeProblems } from './rules';

export { gkeProblems } from './rules';

export interface GkeFunctionArgs extends FunctionArgs {
  /** The cluster to run on; its provider deploys every Kubernetes object. */
  readonly cluster: GkeCluster;
  /** The Kubernetes namespace the function's objects go in (it must exist). */
  readonly namespace: pulumi.Input<string>;
  /** The bucket holding the weights (`provider.weights.bucket`); required when the spec has weights. */
  readonly weightsBucket?: string;
  /** The bucket large inputs and outputs travel through: the pod may read and write it (bucket-level), and uses `<function>/`. */
  readonly payloadBucket?: pulumi.Input<string>;
}

/** Options for the Deployment: GPU nodes, a multi-GB image pull and model loading outlast the default 10 minutes. */
const DEPLOYMENT_TIMEOUTS: pulumi.CustomTimeouts = { create: '40m', update: '40m' };

/** The Kubernetes Secret a secret's value is read from (`HF_TOKEN` → `hf-token`, key `value`). */
export function secretObjectName(secret: string): string {
  return resourceName([secret]);
}

export class GkeFunction extends pulumi.ComponentResource {
  /** The ClusterIP Service's name. */
  readonly serviceName: pulumi.Output<string>;
  readonly namespace: pulumi.Output<string>;
  /** In-cluster URL: `http://<service>.<namespace>.svc.cluster.local`. */
  readonly address: pulumi.Output<string>;
  /** Where its large inputs and outputs travel (`gs://<bucket>/<function>/`), when it has a payload bucket. */
  readonly payloadStore: pulumi.Output<string | undefined>;

  constructor(name: string, args: GkeFunctionArgs, opts?: pulumi.ComponentResourceOptions) {
    const { spec, cluster } = args;
    const problems = gkeProblems(spec);
    if (spec.weights && !args.weightsBucket) problems.push('weights need a bucket: set provider.weights.bucket');
    if (problems.length > 0) throw new ConfigError(`functions.${spec.name}`, problems.join('; '));
    super('serverless-gpu:gke:Function', name, {}, opts);

    const k8sOpts = { parent: this, provider: cluster.provider };
    const objectName = resourceName([spec.service, spec.name]);
    const selector = { app: objectName };
    const labels = { ...commonLabels(spec), ...selector };
    const metadata = { name: objectName, namespace: args.namespace, labels };

    const account = new k8s.core.v1.ServiceAccount(name, { metadata }, k8sOpts);

    const principal = pulumi.interpolate`principal://iam.googleapis.com/projects/${cluster.projectNumber}/locations/global/workloadIdentityPools/${cluster.project}.svc.id.goog/subject/ns/${args.namespace}/sa/${account.metadata.name}`;
    const weightsRead = spec.weights
      ? new gcp.storage.BucketIAMMember(`${name}-weights`, { bucket: args.weightsBucket!, role: 'roles/storage.objectViewer', member: principal }, { parent: this })
      : undefined;
    const payloadStore = args.payloadBucket ? pulumi.interpolate`gs://${args.payloadBucket}/${spec.name}/` : undefined;
    const payloadAccess = args.payloadBucket
      ? new gcp.storage.BucketIAMMember(`${name}-payloads`, { bucket: args.payloadBucket, role: 'roles/storage.objectUser', member: principal }, { parent: this })
      : undefined;

    const sizing = defaultResources('gke', spec.gpu);
    const cpu = String(spec.cpu ?? sizing.cpu);
    const memory = `${spec.memoryMiB ?? sizing.memoryMiB}Mi`;
    const probe = { httpGet: { path: READINESS_PATH, port: CONTAINER_PORT } };

    const deployment = new k8s.apps.v1.Deployment(
      name,
      {
        metadata,
        spec: {
          replicas: Math.max(1, spec.minInstances),
          selector: { matchLabels: selector },
          template: {
            metadata: { labels, annotations: spec.weights ? { 'gke-gcsfuse/volumes': 'true' } : undefined },
            spec: {
              serviceAccountName: account.metadata.name,
              nodeSelector: spec.gpu ? { 'cloud.google.com/gke-accelerator': GKE_ACCELERATORS[spec.gpu.type] } : undefined,
              terminationGracePeriodSeconds: 30,
              containers: [
                {
                  name: 'shim',
                  image: args.image,
                  ports: [{ containerPort: CONTAINER_PORT, name: 'http' }],
                  env: [
                    ...Object.entries(spec.env).map(([envName, value]) => ({ name: envName, value })),
                    { name: 'PORT', value: String(CONTAINER_PORT) },
                    { name: 'SGPU_CONCURRENCY', value: String(spec.concurrency) },
                    { name: 'SGPU_TIMEOUT_MS', value: String(spec.timeoutMs) },
                    ...(payloadStore ? [{ name: 'SGPU_PAYLOAD_STORE', value: payloadStore }] : []),
                    // Kubernetes Secrets the infra team provides: the program names them, never holds values.
                    ...spec.secrets.map((secret) => ({ name: secret, valueFrom: { secretKeyRef: { name: secretObjectName(secret), key: 'value' } } })),
                  ],
                  // Autopilot applies no default requests to GPU pods: ask explicitly.
                  resources: {
                    requests: { cpu, memory },
                    limits: { cpu, memory, ...(spec.gpu ? { 'nvidia.com/gpu': String(spec.gpu.count) } : {}) },
                  },
                  // Up to 10 minutes to start: a GPU node, the image pull and the model load.
                  startupProbe: { ...probe, periodSeconds: 10, failureThreshold: 60 },
                  readinessProbe: { ...probe, periodSeconds: 5 },
                  volumeMounts: spec.weights ? [{ name: 'weights', mountPath: CONTAINER_WEIGHTS_PATH, readOnly: true }] : undefined,
                },
              ],
              volumes: spec.weights
                ? [
                    {
                      name: 'weights',
                      csi: {
                        driver: 'gcsfuse.csi.storage.gke.io',
                        readOnly: true,
                        // One comma-separated string, as the driver expects.
                        volumeAttributes: { bucketName: args.weightsBucket!, mountOptions: `implicit-dirs,only-dir=${weightsMountDir(spec.weights)}` },
                      },
                    },
                  ]
                : undefined,
            },
          },
        },
      },
      { ...k8sOpts, customTimeouts: DEPLOYMENT_TIMEOUTS, dependsOn: [weightsRead, payloadAccess].filter((r): r is gcp.storage.BucketIAMMember => r !== undefined) },
    );

    const service = new k8s.core.v1.Service(
      name,
      { metadata, spec: { type: 'ClusterIP', selector, ports: [{ name: 'http', port: 80, targetPort: CONTAINER_PORT }] } },
      k8sOpts,
    );

    // Scales on CPU, a weak signal for GPU servers. Concurrency per pod is enforced by the shim
    // (SGPU_CONCURRENCY); scaling on queue depth or GPU duty cycle needs a metrics adapter that serves
    // an External or Pods metric. Scale-down waits 5 minutes: a GPU pod is slow to come back.
    new k8s.autoscaling.v2.HorizontalPodAutoscaler(
      name,
      {
        metadata,
        spec: {
          scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: deployment.metadata.name },
          minReplicas: Math.max(1, spec.minInstances),
          maxReplicas: spec.maxInstances,
          metrics: [{ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 70 } } }],
          behavior: { scaleDown: { stabilizationWindowSeconds: 300 } },
        },
      },
      k8sOpts,
    );

    this.serviceName = service.metadata.name;
    this.namespace = service.metadata.namespace;
    this.address = pulumi.interpolate`http://${this.serviceName}.${this.namespace}.svc.cluster.local`;
    this.payloadStore = pulumi.output(payloadStore);
    this.registerOutputs({ serviceName: this.serviceName, namespace: this.namespace, address: this.address, payloadStore: this.payloadStore });
  }
}

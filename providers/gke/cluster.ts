/**
 * The GKE Autopilot cluster a service's functions run on: created for the service (regional, Autopilot)
 * or read by name, plus a Kubernetes provider that reaches it through `gke-gcloud-auth-plugin`.
 */
import * as pulumi from '@pulumi/pulumi';
import * as gcp from '@pulumi/gcp';
import * as k8s from '@pulumi/kubernetes';
import { ConfigError } from '../../plugin/errors';

export interface GkeClusterArgs {
  /** The Google Cloud project the cluster is (or goes) in. */
  readonly project: string;
  /** The service's region (`provider.gcp.region`); a created cluster lives here. */
  readonly region: string;
  /** Create a regional Autopilot cluster for the service (`provider.gke.createCluster`). */
  readonly create: boolean;
  /** The cluster's name (`provider.gke.cluster`): required to use an existing cluster, optional when creating one. */
  readonly name?: string;
  /** Where the cluster is (`provider.gke.location`), region or zone; defaults to `region`. A created cluster must be regional. */
  readonly location?: string;
}

/** `us-central1-a`: a zone, where `us-central1` is a region. */
const ZONE = /^[a-z]+-[a-z]+\d+-[a-z]$/;

/** Rejects args that cannot describe an Autopilot cluster, naming the config key. */
function checkArgs(args: GkeClusterArgs): void {
  if (!args.create && !args.name) {
    throw new ConfigError('provider.gke.cluster', 'name an existing Autopilot cluster, or set provider.gke.createCluster: true');
  }
  const location = args.location ?? args.region;
  if (args.create && ZONE.test(location)) {
    const key = args.location === undefined ? 'provider.gcp.region' : 'provider.gke.location';
    throw new ConfigError(key, `"${location}" is a zone; Autopilot clusters must be regional (e.g. "${location.replace(/-[a-z]$/, '')}")`);
  }
}

/** A kubeconfig whose user runs `gke-gcloud-auth-plugin` (it must be on PATH where Pulumi runs). */
export function gkeKubeconfig(cluster: { context: string; endpoint: string; caCertificate: string }): string {
  const { context, endpoint, caCertificate } = cluster;
  return `apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: ${caCertificate}
    server: https://${endpoint}
  name: ${context}
contexts:
- context:
    cluster: ${context}
    user: ${context}
  name: ${context}
current-context: ${context}
kind: Config
preferences: {}
users:
- name: ${context}
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1beta1
      command: gke-gcloud-auth-plugin
      installHint: Install gke-gcloud-auth-plugin
      provideClusterInfo: true
`;
}

export class GkeCluster extends pulumi.ComponentResource {
  /** Deploys Kubernetes objects to this cluster. */
  readonly provider: k8s.Provider;
  /** The cluster's name (given, or the one GKE assigned when created without one). */
  readonly clusterName: pulumi.Output<string>;
  /** The project's number, for Workload Identity principals. */
  readonly projectNumber: pulumi.Output<string>;
  /** The project ID. */
  readonly project: string;

  constructor(name: string, args: GkeClusterArgs, opts?: pulumi.ComponentResourceOptions) {
    checkArgs(args);
    super('serverless-gpu:gke:Cluster', name, {}, opts);

    const location = args.location ?? args.region;
    let endpoint: pulumi.Output<string>;
    let caCertificate: pulumi.Output<string>;
    if (args.create) {
      const cluster = new gcp.container.Cluster(
        name,
        {
          name: args.name,
          project: args.project,
          location,
          enableAutopilot: true,
          deletionProtection: false,
          releaseChannel: { channel: 'REGULAR' },
        },
        { parent: this },
      );
      this.clusterName = cluster.name;
      endpoint = cluster.endpoint;
      caCertificate = cluster.masterAuth.clusterCaCertificate;
    } else {
      const existing = gcp.container.getClusterOutput({ name: args.name!, location, project: args.project }, { parent: this });
      this.clusterName = existing.name;
      endpoint = existing.endpoint;
      caCertificate = existing.masterAuths.apply((auths) => auths[0].clusterCaCertificate);
    }

    const kubeconfig = pulumi
      .all([this.clusterName, endpoint, caCertificate])
      .apply(([clusterName, host, ca]) => gkeKubeconfig({ context: `gke_${args.project}_${location}_${clusterName}`, endpoint: host, caCertificate: ca }));
    this.provider = new k8s.Provider(name, { kubeconfig: pulumi.secret(kubeconfig), enableServerSideApply: true }, { parent: this });
    this.projectNumber = gcp.organizations.getProjectOutput({ projectId: args.project }, { parent: this }).number;
    this.project = args.project;

    this.registerOutputs({ clusterName: this.clusterName, projectNumber: this.projectNumber, provider: this.provider });
  }
}

/**
 * The Artifact Registry repository a service's images are pushed to, with cleanup policies so old
 * builds do not pile up: untagged images older than a week are deleted, except the most recent few.
 *
 * Shapes follow `gcp.artifactregistry.Repository` in @pulumi/gcp 9.37 (shared/CLOUD_REFERENCE.md §4.1).
 */
import * as pulumi from '@pulumi/pulumi';
import * as gcp from '@pulumi/gcp';

export interface ArtifactRegistryArgs {
  /** The GCP project that owns the repository. */
  readonly project: pulumi.Input<string>;
  /** The repository's region, e.g. `us-central1`; the registry host is `<region>-docker.pkg.dev`. */
  readonly region: pulumi.Input<string>;
  /** The repository's id within the project and region, e.g. `image-search`. */
  readonly repositoryId: pulumi.Input<string>;
  /** How many of the most recent image versions survive cleanup, whatever their age. Defaults to 10. */
  readonly keepCount?: number;
}

/** Untagged images older than this are deleted (unless among the `keepCount` most recent). */
const UNTAGGED_MAX_AGE = '7d';
const DEFAULT_KEEP_COUNT = 10;

export class ArtifactRegistry extends pulumi.ComponentResource {
  /** Where images go: `<region>-docker.pkg.dev/<project>/<repositoryId>`. */
  public readonly registryUri: pulumi.Output<string>;

  constructor(name: string, args: ArtifactRegistryArgs, opts?: pulumi.ComponentResourceOptions) {
    const keepCount = args.keepCount ?? DEFAULT_KEEP_COUNT;
    if (!Number.isInteger(keepCount) || keepCount < 1) {
      throw new Error(`keepCount must be a positive integer, got ${String(args.keepCount)}`);
    }
    super('serverless-gpu:gcp:Registry', name, {}, opts);

    const repository = new gcp.artifactregistry.Repository(
      name,
      {
        project: args.project,
        location: args.region,
        repositoryId: args.repositoryId,
        format: 'DOCKER',
        description: 'Images built by serverless-gpu',
        labels: { 'managed-by': 'serverless-gpu' },
        cleanupPolicyDryRun: false,
        cleanupPolicies: [
          { id: 'delete-untagged', action: 'DELETE', condition: { tagState: 'UNTAGGED', olderThan: UNTAGGED_MAX_AGE } },
          { id: 'keep-most-recent', action: 'KEEP', mostRecentVersions: { keepCount } },
        ],
      },
      { parent: this },
    );

    this.registryUri = repository.registryUri;
    this.registerOutputs({ registryUri: this.registryUri });
  }
}

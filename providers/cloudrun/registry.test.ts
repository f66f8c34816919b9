import assert from 'node:assert/strict';
import { mockPulumi, settle, valueOf, type PulumiMock } from '../pulumi/testing';
import { ArtifactRegistry } from './registry';

const REPOSITORY = 'gcp:artifactregistry/repository:Repository';

describe('ArtifactRegistry', () => {
  let mock: PulumiMock;

  before(async () => {
    mock = await mockPulumi({ 'gcp:project': 'acme', 'gcp:region': 'us-central1' });
  });

  async function create(name: string, keepCount?: number) {
    const registry = new ArtifactRegistry(name, { project: 'acme', region: 'us-central1', repositoryId: 'image-search', keepCount });
    await settle();
    const repositories = mock.ofType(REPOSITORY).filter((r) => r.name === name);
    assert.equal(repositories.length, 1);
    return { registry, inputs: repositories[0].inputs };
  }

  it('creates a Docker repository in the region and project', async () => {
    const { inputs } = await create('registry-format');
    assert.equal(inputs.format, 'DOCKER');
    assert.equal(inputs.location, 'us-central1');
    assert.equal(inputs.project, 'acme');
    assert.equal(inputs.repositoryId, 'image-search');
  });

  it('deletes untagged images after a week but keeps the ten most recent', async () => {
    const { inputs } = await create('registry-cleanup');
    assert.equal(inputs.cleanupPolicyDryRun, false);
    assert.deepEqual(inputs.cleanupPolicies, [
      { id: 'delete-untagged', action: 'DELETE', condition: { tagState: 'UNTAGGED', olderThan: '7d' } },
      { id: 'keep-most-recent', action: 'KEEP', mostRecentVersions: { keepCount: 10 } },
    ]);
  });

  it('keeps as many recent versions as keepCount says', async () => {
    const { inputs } = await create('registry-keep', 3);
    const keep = (inputs.cleanupPolicies as { action: string; mostRecentVersions?: unknown }[]).find((p) => p.action === 'KEEP');
    assert.deepEqual(keep?.mostRecentVersions, { keepCount: 3 });
  });

  it('exposes the registry URI', async () => {
    const { registry } = await create('registry-uri');
    assert.equal(await valueOf(registry.registryUri), 'us-central1-docker.pkg.dev/acme/image-search');
  });

  it('registers the repository under the component', async () => {
    const parents: unknown[] = [];
    const registry = new ArtifactRegistry(
      'registry-parent',
      { project: 'acme', region: 'us-central1', repositoryId: 'image-search' },
      {
        transformations: [
          ({ type, opts }) => {
            if (type !== 'serverless-gpu:gcp:Registry') parents.push(opts.parent);
            return undefined;
          },
        ],
      },
    );
    await settle();
    assert.deepEqual(parents, [registry]);
    assert.ok(mock.resources.some((r) => r.type === 'serverless-gpu:gcp:Registry' && r.name === 'registry-parent'));
  });

  it('rejects a keepCount that is not a positive integer, creating nothing', async () => {
    assert.throws(() => new ArtifactRegistry('registry-bad', { project: 'acme', region: 'us-central1', repositoryId: 'x', keepCount: 0 }), /keepCount must be a positive integer/);
    await settle();
    assert.deepEqual(mock.resources.filter((r) => r.name === 'registry-bad'), []);
  });
});

import assert from 'node:assert/strict';
import { DOCKER_HUB, formatReference, isLoopbackRegistry, parseReference, registryBaseUrl } from './reference';

const DIGEST = `sha256:${'ab'.repeat(32)}`;

describe('parseReference', () => {
  it('puts a one-component Docker Hub name under library/ on registry-1.docker.io', () => {
    assert.deepEqual(parseReference('node:20'), { registry: DOCKER_HUB, repository: 'library/node', tag: '20', digest: undefined });
    assert.equal(DOCKER_HUB, 'registry-1.docker.io');
  });

  it('keeps a user/image Docker Hub name as is', () => {
    assert.deepEqual(parseReference('nvidia/cuda:12.4.1-runtime-ubuntu22.04'), {
      registry: DOCKER_HUB,
      repository: 'nvidia/cuda',
      tag: '12.4.1-runtime-ubuntu22.04',
      digest: undefined,
    });
  });

  it('reads a registry host with a port, and does not take the port for a tag', () => {
    assert.deepEqual(parseReference('127.0.0.1:5000/a/b:t'), { registry: '127.0.0.1:5000', repository: 'a/b', tag: 't', digest: undefined });
    assert.deepEqual(parseReference('127.0.0.1:5000/a/b'), { registry: '127.0.0.1:5000', repository: 'a/b', tag: 'latest', digest: undefined });
  });

  it('takes localhost and dotted first components for registry hosts', () => {
    assert.deepEqual(parseReference('localhost/x'), { registry: 'localhost', repository: 'x', tag: 'latest', digest: undefined });
    assert.deepEqual(parseReference('us-central1-docker.pkg.dev/acme/ml/classifier:env-1'), {
      registry: 'us-central1-docker.pkg.dev',
      repository: 'acme/ml/classifier',
      tag: 'env-1',
      digest: undefined,
    });
  });

  it('defaults the tag to latest', () => {
    assert.equal(parseReference('ubuntu').tag, 'latest');
    assert.equal(parseReference('ghcr.io/acme/tool').tag, 'latest');
  });

  it('reads a digest, with no default tag when only a digest is given', () => {
    assert.deepEqual(parseReference(`ghcr.io/acme/tool@${DIGEST}`), { registry: 'ghcr.io', repository: 'acme/tool', tag: undefined, digest: DIGEST });
    assert.deepEqual(parseReference(`node:20@${DIGEST}`), { registry: DOCKER_HUB, repository: 'library/node', tag: '20', digest: DIGEST });
  });

  it('rejects an uppercase repository, naming it', () => {
    assert.throws(() => parseReference('Node:20'), /invalid repository "library\/Node"/);
    assert.throws(() => parseReference('ghcr.io/Acme/tool'), /invalid repository/);
  });

  it('rejects a bad tag', () => {
    assert.throws(() => parseReference('node:-20'), /invalid tag "-20"/);
    assert.throws(() => parseReference('node:'), /invalid tag/);
    assert.throws(() => parseReference(`node:${'a'.repeat(129)}`), /invalid tag/);
  });

  it('rejects a bad digest', () => {
    assert.throws(() => parseReference('node@sha256:1234'), /invalid digest/);
    assert.throws(() => parseReference(`node@md5:${'ab'.repeat(32)}`), /invalid digest/);
    assert.throws(() => parseReference(`node@sha256:${'AB'.repeat(32)}`), /invalid digest/);
  });

  it('rejects empty references and references with spaces', () => {
    assert.throws(() => parseReference(''), /not an image reference/);
    assert.throws(() => parseReference('node 20'), /not an image reference/);
  });
});

describe('formatReference', () => {
  it('writes registry/repository:tag, with latest when no tag is given', () => {
    assert.equal(formatReference({ registry: '127.0.0.1:5000', repository: 'a/b', tag: 't' }), '127.0.0.1:5000/a/b:t');
    assert.equal(formatReference({ registry: 'ghcr.io', repository: 'acme/tool' }), 'ghcr.io/acme/tool:latest');
  });

  it('prefers the digest over the tag', () => {
    assert.equal(formatReference({ registry: 'ghcr.io', repository: 'acme/tool', tag: 't', digest: DIGEST }), `ghcr.io/acme/tool@${DIGEST}`);
  });

  it('round-trips what parseReference reads', () => {
    for (const ref of ['127.0.0.1:5000/a/b:t', `ghcr.io/acme/tool@${DIGEST}`, 'us-central1-docker.pkg.dev/acme/ml/classifier:env-1']) {
      assert.equal(formatReference(parseReference(ref)), ref);
    }
    assert.equal(formatReference(parseReference('node:20')), 'registry-1.docker.io/library/node:20');
  });
});

describe('isLoopbackRegistry', () => {
  it('is true for 127.x, localhost and ::1, with or without a port', () => {
    for (const registry of ['127.0.0.1', '127.0.0.1:5000', '127.1.2.3:80', 'localhost', 'localhost:5000', '::1', '[::1]', '[::1]:5000']) {
      assert.equal(isLoopbackRegistry(registry), true, registry);
    }
  });

  it('is false for other hosts, including ones that only look like loopback', () => {
    for (const registry of ['10.0.0.1', '10.0.0.1:5000', 'example.com', 'registry-1.docker.io', '127.0.0.1.nip.io', 'localhost.example.com', '::2']) {
      assert.equal(isLoopbackRegistry(registry), false, registry);
    }
  });
});

describe('registryBaseUrl', () => {
  it('speaks plain HTTP to loopback registries', () => {
    assert.equal(registryBaseUrl('127.0.0.1:5000'), 'http://127.0.0.1:5000');
    assert.equal(registryBaseUrl('localhost'), 'http://localhost');
    assert.equal(registryBaseUrl('[::1]:5000'), 'http://[::1]:5000');
  });

  it('speaks HTTPS to every other registry', () => {
    assert.equal(registryBaseUrl('10.0.0.1:5000'), 'https://10.0.0.1:5000');
    assert.equal(registryBaseUrl('us-central1-docker.pkg.dev'), 'https://us-central1-docker.pkg.dev');
    assert.equal(registryBaseUrl(DOCKER_HUB), 'https://registry-1.docker.io');
  });
});

import assert from 'node:assert/strict';
import fs from 'node:fs';
import Module from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { ecrRegion, findCredentials, fromDockerConfig, fromEcr, fromGoogle, isGoogleRegistry, type CredentialSource, type Credentials } from './credentials';

describe('fromDockerConfig', () => {
  let dir: string;
  let saved: string | undefined;

  beforeEach(() => {
    saved = process.env.DOCKER_CONFIG;
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sgpu-docker-config-'));
    process.env.DOCKER_CONFIG = dir;
  });

  afterEach(() => {
    if (saved === undefined) delete process.env.DOCKER_CONFIG;
    else process.env.DOCKER_CONFIG = saved;
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const writeAuths = (auths: Record<string, Record<string, string>>): string => {
    const file = path.join(dir, 'config.json');
    fs.writeFileSync(file, JSON.stringify({ auths }));
    return file;
  };

  it('decodes an `auth` entry (base64 user:pass), keeping colons in the password', async () => {
    const file = writeAuths({ '127.0.0.1:5000': { auth: Buffer.from('alice:pa:ss').toString('base64') } });
    assert.deepEqual(await fromDockerConfig('127.0.0.1:5000'), { username: 'alice', password: 'pa:ss', source: file });
  });

  it('reads username and password fields', async () => {
    writeAuths({ 'ghcr.io': { username: 'bob', password: 'hunter2' } });
    const found = await fromDockerConfig('ghcr.io');
    assert.equal(found?.username, 'bob');
    assert.equal(found?.password, 'hunter2');
  });

  it('uses an identitytoken as the password', async () => {
    writeAuths({ 'ghcr.io': { identitytoken: 'tok-123', auth: Buffer.from('x:y').toString('base64') } });
    const found = await fromDockerConfig('ghcr.io');
    assert.equal(found?.username, '<token>');
    assert.equal(found?.password, 'tok-123');
  });

  it('matches URL-style keys, and Docker Hub under any of its names', async () => {
    writeAuths({
      'https://index.docker.io/v1/': { auth: Buffer.from('hubuser:hubpass').toString('base64') },
      'https://127.0.0.1:5000/v2/': { username: 'local', password: 'lp' },
    });
    assert.equal((await fromDockerConfig('registry-1.docker.io'))?.username, 'hubuser');
    assert.equal((await fromDockerConfig('127.0.0.1:5000'))?.username, 'local');
  });

  it('answers undefined when no entry matches the registry', async () => {
    writeAuths({ 'ghcr.io': { username: 'bob', password: 'hunter2' }, '127.0.0.1:5000': { username: 'x', password: 'y' } });
    assert.equal(await fromDockerConfig('quay.io'), undefined);
    assert.equal(await fromDockerConfig('127.0.0.1:5001'), undefined);
    assert.equal(await fromDockerConfig('registry-1.docker.io'), undefined);
  });

  it('answers undefined for an entry with neither token, password nor a valid auth', async () => {
    writeAuths({ 'ghcr.io': { auth: Buffer.from('no-colon-here').toString('base64') } });
    assert.equal(await fromDockerConfig('ghcr.io'), undefined);
  });

  it('answers undefined when the config file is missing or not JSON', async () => {
    assert.equal(await fromDockerConfig('ghcr.io'), undefined);
    fs.writeFileSync(path.join(dir, 'config.json'), '{ not json');
    assert.equal(await fromDockerConfig('ghcr.io'), undefined);
  });
});

describe('isGoogleRegistry', () => {
  it('recognises Artifact Registry and Container Registry hosts', () => {
    for (const host of ['us-central1-docker.pkg.dev', 'europe-docker.pkg.dev', 'gcr.io', 'eu.gcr.io']) assert.equal(isGoogleRegistry(host), true, host);
  });

  it('does not take look-alike hosts for Google', () => {
    for (const host of ['notgcr.io', 'gcr.io.example.com', 'docker.pkg.dev.example.com', 'ghcr.io', '127.0.0.1:5000']) {
      assert.equal(isGoogleRegistry(host), false, host);
    }
  });
});

describe('ecrRegion', () => {
  it('reads the region of an ECR host', () => {
    assert.equal(ecrRegion('123456789012.dkr.ecr.us-east-1.amazonaws.com'), 'us-east-1');
    assert.equal(ecrRegion('123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com'), 'us-gov-west-1');
    assert.equal(ecrRegion('123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn'), 'cn-north-1');
  });

  it('is undefined for hosts that are not ECR', () => {
    for (const host of ['12345.dkr.ecr.us-east-1.amazonaws.com', '123456789012.dkr.ecr.us-east-1.example.com', 'ghcr.io', 'us-central1-docker.pkg.dev']) {
      assert.equal(ecrRegion(host), undefined, host);
    }
  });
});

describe('findCredentials', () => {
  const creds = (username: string): Credentials => ({ username, password: `${username}-pw`, source: `${username}-source` });

  it('asks the sources in order and stops at the first that answers', async () => {
    const asked: string[] = [];
    const source =
      (name: string, answer: Credentials | undefined): CredentialSource =>
      async (registry) => {
        asked.push(`${name}:${registry}`);
        return answer;
      };
    const found = await findCredentials('ghcr.io', [source('a', undefined), source('b', creds('bob')), source('c', creds('carol'))]);
    assert.deepEqual(found, creds('bob'));
    assert.deepEqual(asked, ['a:ghcr.io', 'b:ghcr.io']);
  });

  it('answers undefined when no source has credentials', async () => {
    let calls = 0;
    const none: CredentialSource = async () => {
      calls += 1;
      return undefined;
    };
    assert.equal(await findCredentials('ghcr.io', [none, none]), undefined);
    assert.equal(calls, 2);
    assert.equal(await findCredentials('ghcr.io', []), undefined);
  });
});

describe('fromGoogle and fromEcr', () => {
  type Load = (request: string, parent: unknown, isMain: boolean) => unknown;
  const loader = Module as unknown as { _load: Load };
  let original: Load;
  let loaded: string[];

  beforeEach(() => {
    loaded = [];
    original = loader._load;
    loader._load = function (request, parent, isMain) {
      if (request === 'google-auth-library' || request.startsWith('@aws-sdk/')) {
        loaded.push(request);
        throw new Error(`test: ${request} must not be loaded for a registry of another cloud`);
      }
      return original.call(this, request, parent, isMain);
    };
  });

  afterEach(() => {
    loader._load = original;
  });

  it('fromGoogle answers undefined for a registry that is not Google without loading its SDK', async () => {
    assert.equal(await fromGoogle('123456789012.dkr.ecr.us-east-1.amazonaws.com'), undefined);
    assert.equal(await fromGoogle('127.0.0.1:5000'), undefined);
    assert.deepEqual(loaded, []);
  });

  it('fromEcr answers undefined for a registry that is not ECR without loading its SDK', async () => {
    assert.equal(await fromEcr('us-central1-docker.pkg.dev'), undefined);
    assert.equal(await fromEcr('127.0.0.1:5000'), undefined);
    assert.deepEqual(loaded, []);
  });

  it('the guard itself works: a matching registry does reach for the SDK', async () => {
    await assert.rejects(fromGoogle('us-central1-docker.pkg.dev'), /must not be loaded/);
    await assert.rejects(fromEcr('123456789012.dkr.ecr.us-east-1.amazonaws.com'), /must not be loaded/);
    assert.deepEqual(loaded, ['google-auth-library', '@aws-sdk/client-ecr']);
  });
});

/**
 * `sls deploy` / `sls remove` for cloud targets go through Pulumi's Automation API, which drives the
 * `pulumi` CLI. No CLI can be installed here, so: without one, deploy fails before any side effect; with
 * a stand-in CLI on PATH that records what it is asked and refuses to change anything, the real
 * Automation API is driven as far as it goes — stack per service and stage, provider config, backend.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CLIS, ROOT, copyService, run } from './helpers';

describe('the Automation API path without the Pulumi CLI', function () {
  this.timeout(120_000);
  let dir = '';
  let bin = '';

  before(() => {
    dir = copyService(path.join(ROOT, 'examples', 'kfold'), 'automation-kfold');
    bin = fs.mkdtempSync(path.join(os.tmpdir(), 'sgpu-fake-pulumi-'));
    // A stand-in `pulumi`: answers version, stack and config like the CLI, logs every call, refuses the rest.
    fs.writeFileSync(
      path.join(bin, 'pulumi'),
      [
        '#!/bin/sh',
        `echo "$* | backend=$PULUMI_BACKEND_URL | project=$(grep '^name:' Pulumi.yaml 2>/dev/null)" >> "${path.join(bin, 'calls.log')}"`,
        'case "$1" in',
        '  version) echo v3.248.0;;',
        '  stack|config) ;;',
        '  *) echo "error: this stand-in cannot run $1" >&2; exit 1;;',
        'esac',
        '',
      ].join('\n'),
      { mode: 0o755 },
    );
  });

  after(() => {
    fs.rmSync(dir, { recursive: true, force: true });
    fs.rmSync(bin, { recursive: true, force: true });
  });

  it('fails sls deploy before any side effect, saying what to install', async () => {
    const result = await run(process.execPath, [CLIS.osls, 'deploy'], dir, 120_000, { PATH: path.dirname(process.execPath) + ':/usr/bin:/bin' });
    assert.notEqual(result.code, 0);
    assert.match(result.output, /needs the Pulumi CLI, which is not installed here/);
    assert.match(result.output, /get\.pulumi\.com/);
    assert.equal(fs.existsSync(path.join(dir, '.serverless')), false, 'nothing was packaged, built or pushed');
  });

  it('drives one stack per service and stage, with the backend and provider config from serverless.yml', async () => {
    const env = { PATH: `${bin}:${process.env.PATH}`, PULUMI_BACKEND_URL: 'file:///tmp/sgpu-state', PULUMI_CONFIG_PASSPHRASE: 'test' };
    const result = await run(process.execPath, [CLIS.osls, 'remove', '--stage', 'ci'], dir, 120_000, env);
    assert.notEqual(result.code, 0);
    assert.match(result.output, /pulumi destroy of kfold\/ci failed:[\s\S]*this stand-in cannot run destroy/);
    const calls = fs.readFileSync(path.join(bin, 'calls.log'), 'utf8').trim().split('\n');
    assert.ok(calls.some((c) => /^stack select --stack ci /.test(c) && c.includes('project=name: kfold')), calls.join('\n'));
    assert.ok(calls.some((c) => c.startsWith('config set-all --stack ci --plaintext aws:region=us-east-1')), calls.join('\n'));
    assert.ok(calls.some((c) => /^destroy --yes .*--exec-kind auto\.inline --stack ci/.test(c)), calls.join('\n'));
    assert.ok(calls.every((c) => c.includes('backend=file:///tmp/sgpu-state')), 'PULUMI_BACKEND_URL reaches the CLI');
  });

  it('asks for a passphrase when the state backend is a folder', async () => {
    const result = await run(process.execPath, [CLIS.osls, 'info', '--stage', 'ci'], dir, 120_000, { PATH: `${bin}:${process.env.PATH}`, PULUMI_BACKEND_URL: 'file:///tmp/sgpu-state' });
    assert.notEqual(result.code, 0);
    assert.match(result.output, /set PULUMI_CONFIG_PASSPHRASE/);
  });
});

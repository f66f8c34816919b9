import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BuildError } from '../errors';
import { pinVersions } from './lockfile';

describe('pinVersions', () => {
  let dir: string;

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sgpu-lockfile-'));
  });

  afterEach(() => {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const write = (rel: string, value: unknown): void => {
    fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
    fs.writeFileSync(path.join(dir, rel), JSON.stringify(value));
  };

  it('reads versions from a v3 package-lock.json, in the order asked', () => {
    write('package-lock.json', {
      lockfileVersion: 3,
      packages: { '': { name: 'svc' }, 'node_modules/sharp': { version: '0.33.4' }, 'node_modules/@img/sharp-linux-x64': { version: '0.33.5' } },
    });
    assert.deepEqual(pinVersions(dir, ['@img/sharp-linux-x64', 'sharp']), ['@img/sharp-linux-x64@0.33.5', 'sharp@0.33.4']);
  });

  it('reads versions from a v1 package-lock.json', () => {
    write('package-lock.json', { lockfileVersion: 1, dependencies: { 'onnxruntime-node': { version: '1.18.0' } } });
    assert.deepEqual(pinVersions(dir, ['onnxruntime-node']), ['onnxruntime-node@1.18.0']);
  });

  it('prefers the lockfile over the installed package', () => {
    write('package-lock.json', { lockfileVersion: 3, packages: { 'node_modules/sharp': { version: '0.33.4' } } });
    write('node_modules/sharp/package.json', { name: 'sharp', version: '0.1.0' });
    assert.deepEqual(pinVersions(dir, ['sharp']), ['sharp@0.33.4']);
  });

  it('falls back to the installed package.json when the lockfile does not pin the module', () => {
    write('package-lock.json', { lockfileVersion: 3, packages: { 'node_modules/other': { version: '1.0.0' } } });
    write('node_modules/sharp/package.json', { name: 'sharp', version: '0.32.6' });
    assert.deepEqual(pinVersions(dir, ['sharp']), ['sharp@0.32.6']);
  });

  it('finds the lockfile and node_modules of a parent folder (a workspace)', () => {
    write('package-lock.json', { lockfileVersion: 3, packages: { 'node_modules/sharp': { version: '0.33.4' } } });
    write('node_modules/canvas/package.json', { name: 'canvas', version: '2.11.2' });
    fs.mkdirSync(path.join(dir, 'services', 'classifier'), { recursive: true });
    assert.deepEqual(pinVersions(path.join(dir, 'services', 'classifier'), ['sharp', 'canvas']), ['sharp@0.33.4', 'canvas@2.11.2']);
  });

  it('fails with UNPINNED_MODULE naming a module pinned nowhere', () => {
    write('package-lock.json', { lockfileVersion: 3, packages: { 'node_modules/sharp': { version: '0.33.4' } } });
    const name = 'sgpu-test-module-pinned-nowhere';
    assert.throws(
      () => pinVersions(dir, ['sharp', name]),
      (error: unknown) => error instanceof BuildError && error.code === 'UNPINNED_MODULE' && error.message.includes(`"${name}"`),
    );
  });

  it('needs no lockfile for no modules', () => {
    fs.writeFileSync(path.join(dir, 'package-lock.json'), '{ not json');
    assert.deepEqual(pinVersions(dir, []), []);
  });
});

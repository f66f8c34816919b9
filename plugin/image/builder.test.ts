import assert from 'node:assert/strict';
import { BuildError } from '../errors';
import { buildFailure, pickBuilder, runCommand, type BuilderName } from './builder';

const installed = (buildah: boolean, docker: boolean, asked: BuilderName[] = []): Record<BuilderName, () => boolean> => ({
  buildah: () => {
    asked.push('buildah');
    return buildah;
  },
  docker: () => {
    asked.push('docker');
    return docker;
  },
});

function buildError(fn: () => unknown): BuildError {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof BuildError, `expected a BuildError, got ${String(error)}`);
    return error;
  }
  assert.fail('expected a BuildError');
}

describe('pickBuilder', () => {
  it('auto prefers buildah when both are installed, without asking about docker', () => {
    const asked: BuilderName[] = [];
    assert.equal(pickBuilder('auto', installed(true, true, asked)).name, 'buildah');
    assert.deepEqual(asked, ['buildah']);
  });

  it('auto falls back to docker', () => {
    assert.equal(pickBuilder('auto', installed(false, true)).name, 'docker');
  });

  it('auto with neither installed fails with NO_BUILDER naming buildah and Docker', () => {
    const error = buildError(() => pickBuilder('auto', installed(false, false)));
    assert.equal(error.code, 'NO_BUILDER');
    assert.match(error.message, /buildah/);
    assert.match(error.message, /Docker/);
  });

  it('an explicit builder that is not installed fails naming it, with no fallback to the other', () => {
    const docker = buildError(() => pickBuilder('docker', installed(true, false)));
    assert.equal(docker.code, 'NO_BUILDER');
    assert.match(docker.message, /"docker"/);
    const buildah = buildError(() => pickBuilder('buildah', installed(false, true)));
    assert.equal(buildah.code, 'NO_BUILDER');
    assert.match(buildah.message, /"buildah" but buildah is not installed/);
  });

  it('an explicit builder that is installed is used even when the other is too', () => {
    assert.equal(pickBuilder('docker', installed(true, true)).name, 'docker');
    assert.equal(pickBuilder('buildah', installed(true, true)).name, 'buildah');
  });
});

describe('buildFailure', () => {
  const request = { ref: '127.0.0.1:5000/acme/svc:env-0123', base: 'nvidia/cuda:99.9-nope' };

  it('blames the base when the output says it could not be pulled', () => {
    const output = [
      'STEP 1/3: FROM nvidia/cuda:99.9-nope',
      'Trying to pull docker.io/nvidia/cuda:99.9-nope...',
      'Error: creating build container: initializing source docker://nvidia/cuda:99.9-nope: reading manifest 99.9-nope in docker.io/nvidia/cuda: manifest unknown',
    ].join('\n');
    const error = buildFailure('buildah bud', request, { code: 125, output });
    assert.equal(error.code, 'UNKNOWN_BASE');
    assert.ok(error.message.includes('"nvidia/cuda:99.9-nope"'), error.message);
    assert.ok(error.message.includes(request.ref), error.message);
    assert.match(error.message, /manifest unknown/);
  });

  it('does not blame the base for a pull error about another image', () => {
    const output = 'Error: pushing 127.0.0.1:5000/acme/svc:env-0123: manifest unknown';
    const error = buildFailure('buildah push', request, { code: 1, output });
    assert.equal(error.code, 'BUILD_FAILED');
  });

  it('reports other failures as BUILD_FAILED with the exit code and the tail of the output', () => {
    const lines = Array.from({ length: 40 }, (_, i) => `line-${String(i + 1).padStart(3, '0')}`);
    lines.push('E: Unable to locate package nope');
    const error = buildFailure('buildah bud', request, { code: 100, output: `${lines.join('\n')}\n` });
    assert.equal(error.code, 'BUILD_FAILED');
    assert.match(error.message, /^buildah bud of 127\.0\.0\.1:5000\/acme\/svc:env-0123 failed \(exit 100\)/);
    assert.match(error.message, /E: Unable to locate package nope$/);
    assert.ok(error.message.includes('line-027'), 'the last 15 lines are kept');
    assert.ok(!error.message.includes('line-026'), 'earlier lines are left out');
  });
});

describe('runCommand', function () {
  this.timeout(10_000);

  it('passes each line of stdout and stderr on and resolves the exit code', async () => {
    const lines: string[] = [];
    const result = await runCommand('sh', ['-c', 'echo a; echo b >&2; exit 3'], (line) => lines.push(line));
    assert.equal(result.code, 3);
    assert.deepEqual([...lines].sort(), ['a', 'b']);
    assert.match(result.output, /a\n/);
    assert.match(result.output, /b\n/);
  });

  it('passes on a last line without a newline, and skips blank lines', async () => {
    const lines: string[] = [];
    const result = await runCommand('sh', ['-c', "printf 'x\\n\\n  \\ny'"], (line) => lines.push(line));
    assert.equal(result.code, 0);
    assert.deepEqual(lines, ['x', 'y']);
  });

  it('resolves a non-zero code when the command does not exist', async () => {
    const result = await runCommand('sgpu-no-such-command-here', [], () => undefined);
    assert.notEqual(result.code, 0);
    assert.match(result.output, /ENOENT/);
  });
});

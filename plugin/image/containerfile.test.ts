import assert from 'node:assert/strict';
import type { ImageStep } from '../../runtime-shim/image';
import { APP_DIR, renderContainerfile } from './containerfile';

const FROM: ImageStep = { op: 'from', base: 'nvidia/cuda:12.4.1-runtime-ubuntu22.04' };

function render(steps: readonly ImageStep[], externals: readonly string[] = []): { lines: string[]; text: string; copies: ReadonlyArray<{ source: string; contextName: string }> } {
  const rendered = renderContainerfile({ steps: [FROM, ...steps], externals, tag: 'env-0123' });
  return { lines: rendered.text.split('\n'), text: rendered.text, copies: rendered.copies };
}

/** The instructions, without comments and blank lines. */
const instructions = (lines: readonly string[]): string[] => lines.filter((line) => line.trim() !== '' && !line.startsWith('#'));

describe('renderContainerfile', () => {
  it('starts with FROM the base, after a comment naming the tag', () => {
    const { lines, text } = render([]);
    assert.match(lines[0], /^# .*env-0123/);
    assert.deepEqual(instructions(lines), [`FROM ${FROM.base}`]);
    assert.ok(text.endsWith('\n'));
  });

  it('installs apt packages without recommends and removes the package lists in the same layer', () => {
    const { lines } = render([{ op: 'apt', packages: ['ffmpeg', 'git'] }]);
    assert.equal(
      instructions(lines)[1],
      `RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends 'ffmpeg' 'git' && rm -rf /var/lib/apt/lists/*`,
    );
  });

  it('installs pip packages without a cache, quoting version specifiers', () => {
    const { lines } = render([{ op: 'pip', packages: ['torch>=2.3', 'numpy==1.26.4'] }]);
    assert.equal(instructions(lines)[1], `RUN python3 -m pip install --no-cache-dir 'torch>=2.3' 'numpy==1.26.4'`);
  });

  it('installs npm packages into /app', () => {
    const { lines } = render([{ op: 'npm', packages: ['sharp@0.33.4'] }]);
    assert.equal(APP_DIR, '/app');
    assert.equal(instructions(lines)[1], `RUN mkdir -p /app && cd /app && npm install --no-save --omit=dev --no-audit --no-fund 'sharp@0.33.4'`);
  });

  it('installs Node.js only when the image lacks that major version', () => {
    const { text } = render([{ op: 'node', version: 'v22.3.0' }]);
    assert.match(text, /RUN if command -v node >\/dev\/null 2>&1 && node --version \| grep -q '\^v22\\\.'; then .*; else/);
    assert.match(text, /setup_22\.x/);
    assert.match(text, /apt-get install -y --no-install-recommends nodejs/);
    assert.match(text, /; fi\n$/);
  });

  it('refuses a node version that is not a major version number', () => {
    assert.throws(() => render([{ op: 'node', version: 'lts' }]), /"lts" is not a Node\.js major version/);
    assert.throws(() => render([{ op: 'node', version: '20; rm -rf /' }]), /not a Node\.js major version/);
  });

  it('runs a command as given', () => {
    const { lines } = render([{ op: 'run', command: 'make -j4 && make install' }]);
    assert.equal(instructions(lines)[1], 'RUN make -j4 && make install');
  });

  it('keeps a multi-line command inside its one RUN instruction with line continuations', () => {
    const { text } = render([{ op: 'run', command: 'make &&\nmake install' }, { op: 'workdir', dir: '/w' }]);
    assert.match(text, /\nRUN make && \\\n {4}make install\nWORKDIR \/w\n/);
  });

  it('sets env vars as ENV K="v" with JSON quoting, one per line', () => {
    const { lines } = render([{ op: 'env', vars: { A: 'x y', QUOTED: 'say "hi"\\now' } }]);
    assert.deepEqual(instructions(lines).slice(1), ['ENV A="x y"', 'ENV QUOTED="say \\"hi\\"\\\\now"']);
  });

  it('refuses env var names that are not names', () => {
    for (const name of ['1A', 'A-B', 'A B', '', 'A=B']) {
      assert.throws(() => render([{ op: 'env', vars: { [name]: 'v' } }]), /is not an environment variable name/, JSON.stringify(name));
    }
  });

  it('sets the working folder', () => {
    assert.equal(instructions(render([{ op: 'workdir', dir: '/srv/model' }]).lines)[1], 'WORKDIR /srv/model');
  });

  it('copies from numbered names in the build context and lists what goes there', () => {
    const { lines, copies } = render([
      { op: 'copy', source: 'models', dest: '/models' },
      { op: 'run', command: 'ls' },
      { op: 'copy', source: 'config/app.json', dest: '/app/app.json' },
    ]);
    assert.deepEqual(instructions(lines).slice(1), ['COPY copy-0 /models', 'RUN ls', 'COPY copy-1 /app/app.json']);
    assert.deepEqual(copies, [
      { source: 'models', contextName: 'copy-0' },
      { source: 'config/app.json', contextName: 'copy-1' },
    ]);
  });

  it('keeps the steps in their order', () => {
    const { lines } = render([
      { op: 'workdir', dir: '/w' },
      { op: 'apt', packages: ['git'] },
      { op: 'env', vars: { A: '1' } },
    ]);
    assert.deepEqual(
      instructions(lines).map((line) => line.split(' ')[0]),
      ['FROM', 'WORKDIR', 'RUN', 'ENV'],
    );
  });

  it('appends the external modules last, as one pinned npm install into /app', () => {
    const { lines } = render([{ op: 'apt', packages: ['git'] }], ['sharp@0.33.4', '@img/sharp-linux-x64@0.33.4']);
    const all = instructions(lines);
    const installs = all.filter((line) => line.includes('sharp@0.33.4'));
    assert.equal(installs.length, 1);
    assert.equal(all[all.length - 1], `RUN mkdir -p /app && cd /app && npm install --no-save --omit=dev --no-audit --no-fund 'sharp@0.33.4' '@img/sharp-linux-x64@0.33.4'`);
  });

  it('adds no install step when there are no external modules', () => {
    const { lines } = render([{ op: 'apt', packages: ['git'] }]);
    assert.equal(instructions(lines).filter((line) => line.includes('npm install')).length, 0);
  });

  it('refuses package names with shell metacharacters, in every installing step and in the externals', () => {
    for (const bad of ['a; rm -rf /', '$(id)', '`id`', 'a && b', "it's", 'a|b', 'a\nb']) {
      for (const op of ['apt', 'pip', 'npm'] as const) {
        assert.throws(() => render([{ op, packages: ['ok', bad] }]), /is not a package name/, `${op} ${JSON.stringify(bad)}`);
      }
      assert.throws(() => render([], [bad]), /is not a package name/, `externals ${JSON.stringify(bad)}`);
    }
  });
});

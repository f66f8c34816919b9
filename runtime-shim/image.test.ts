import assert from 'node:assert/strict';
import { Image, canonicalJson } from './image';

const BASE = 'nvidia/cuda:12.4.1-runtime-ubuntu22.04';

function chain(): Image {
  return Image.from(BASE).apt(['ffmpeg', 'git']).node('20').npm(['onnxruntime-node']).env({ A: '1', B: '2' }).workdir('/app');
}

describe('Image', function () {
  this.timeout(2000);

  it('gives the same hash to the same chain built twice', () => {
    const a = chain();
    const b = chain();
    assert.notEqual(a, b);
    assert.match(a.hash, /^[0-9a-f]{64}$/);
    assert.equal(a.hash, b.hash);
    assert.deepEqual(a.steps, b.steps);
  });

  it('gives the same hash to env vars given in a different key order', () => {
    const a = Image.from(BASE).env({ A: '1', B: '2' });
    const b = Image.from(BASE).env({ B: '2', A: '1' });
    assert.equal(a.hash, b.hash);
  });

  it('gives a different hash when one step differs', () => {
    const base = Image.from(BASE);
    const hashes = [
      base.hash,
      base.apt(['ffmpeg']).hash,
      base.apt(['git']).hash,
      base.pip(['ffmpeg']).hash,
      base.npm(['ffmpeg']).hash,
      base.run('echo hi').hash,
      base.run('echo ho').hash,
      base.env({ A: '1' }).hash,
      base.env({ A: '2' }).hash,
      base.workdir('/app').hash,
      base.copy('src', '/app').hash,
      base.copy('src', '/srv').hash,
      base.node('20').hash,
      base.node('22').hash,
      Image.from('ubuntu:22.04').hash,
    ];
    assert.equal(new Set(hashes).size, hashes.length, 'every distinct chain must hash differently');
  });

  it('gives a different hash when the same steps come in another order', () => {
    const a = Image.from(BASE).apt(['ffmpeg']).pip(['torch']);
    const b = Image.from(BASE).pip(['torch']).apt(['ffmpeg']);
    assert.notEqual(a.hash, b.hash);
  });

  it('changes the final hash when an early step changes, even if every later step is the same', () => {
    const a = Image.from(BASE).apt(['ffmpeg']).pip(['torch']).run('make').workdir('/app');
    const b = Image.from(BASE).apt(['sox']).pip(['torch']).run('make').workdir('/app');
    assert.notEqual(a.hash, b.hash);
    const c = Image.from('ubuntu:24.04').apt(['ffmpeg']).pip(['torch']).run('make').workdir('/app');
    assert.notEqual(a.hash, c.hash);
  });

  it('leaves the base image unchanged when a step is added to it', () => {
    const base = Image.from(BASE);
    const stepsBefore = JSON.stringify(base.steps);
    const hashBefore = base.hash;
    const withApt = base.apt(['ffmpeg']);
    const withPip = base.pip(['torch']);
    assert.equal(base.steps.length, 1);
    assert.equal(JSON.stringify(base.steps), stepsBefore);
    assert.equal(base.hash, hashBefore);
    assert.equal(withApt.steps.length, 2);
    assert.equal(withPip.steps.length, 2);
    assert.deepEqual(withApt.steps[1], { op: 'apt', packages: ['ffmpeg'] });
    assert.deepEqual(withPip.steps[1], { op: 'pip', packages: ['torch'] });
  });

  it('keeps its own copy of a package list and env vars, so changing them afterwards changes nothing', () => {
    const packages = ['ffmpeg'];
    const vars: Record<string, string> = { A: '1' };
    const image = Image.from(BASE).apt(packages).env(vars);
    const hash = image.hash;
    packages.push('git');
    vars.A = 'changed';
    assert.deepEqual(image.steps[1], { op: 'apt', packages: ['ffmpeg'] });
    assert.deepEqual(image.steps[2], { op: 'env', vars: { A: '1' } });
    assert.equal(Image.from(BASE).apt(['ffmpeg']).env({ A: '1' }).hash, hash);
  });

  it('rebuilds the same hash and steps from its recorded steps with fromSteps', () => {
    const original = chain().copy('weights', '/weights').run('npm ci');
    const recorded = JSON.parse(JSON.stringify(original)) as { steps: Parameters<typeof Image.fromSteps>[0]; hash: string };
    assert.equal(recorded.hash, original.hash);
    const rebuilt = Image.fromSteps(recorded.steps);
    assert.equal(rebuilt.hash, original.hash);
    assert.deepEqual(rebuilt.steps, original.steps);
    assert.equal(rebuilt.base, BASE);
  });

  it('refuses to rebuild from steps that do not start with "from"', () => {
    assert.throws(() => Image.fromSteps([]), TypeError);
    assert.throws(() => Image.fromSteps([{ op: 'run', command: 'true' }]), /must start with a "from" step/);
  });

  it('throws a TypeError naming the method for an empty package list', () => {
    const base = Image.from(BASE);
    assert.throws(() => base.apt([]), { name: 'TypeError', message: /Image\.apt\(\)/ });
    assert.throws(() => base.pip([]), { name: 'TypeError', message: /Image\.pip\(\)/ });
    assert.throws(() => base.npm([]), { name: 'TypeError', message: /Image\.npm\(\)/ });
    assert.throws(() => base.apt(['ok', '  ']), { name: 'TypeError', message: /Image\.apt\(\)/ });
  });

  it('throws a TypeError naming the method for an empty base or other empty strings', () => {
    assert.throws(() => Image.from(''), { name: 'TypeError', message: /Image\.from\(\)/ });
    assert.throws(() => Image.from('   '), { name: 'TypeError', message: /Image\.from\(\)/ });
    const base = Image.from(BASE);
    assert.throws(() => base.run(''), { name: 'TypeError', message: /Image\.run\(\)/ });
    assert.throws(() => base.workdir(''), { name: 'TypeError', message: /Image\.workdir\(\)/ });
    assert.throws(() => base.copy('src', ''), { name: 'TypeError', message: /Image\.copy\(\)/ });
    assert.throws(() => base.env({ A: 1 as unknown as string }), { name: 'TypeError', message: /Image\.env\(\)/ });
  });

  it('recognises its own images and nothing else with isImage', () => {
    assert.equal(Image.isImage(Image.from(BASE)), true);
    assert.equal(Image.isImage({ steps: [], hash: 'x' }), false);
    assert.equal(Image.isImage(null), false);
  });
});

describe('canonicalJson', function () {
  this.timeout(2000);

  it('sorts object keys at every depth and drops undefined fields', () => {
    assert.equal(canonicalJson({ b: 1, a: { d: [2, { y: 1, x: 0 }], c: undefined } }), '{"a":{"d":[2,{"x":0,"y":1}]},"b":1}');
  });
});

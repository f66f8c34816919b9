/**
 * Config mistakes are caught at `sls package` with the field named, and the typed client makes a wrong
 * call a compile error: both on a copy of examples/classifier, with the real CLIs and the real tsc.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { ROOT, copyService, run, sls } from './helpers';

const TSC = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');

describe('sls package on a broken examples/classifier', function () {
  this.timeout(120_000);
  let dir = '';
  let yml = '';
  let handler = '';

  beforeEach(() => {
    dir = copyService(path.join(ROOT, 'examples', 'classifier'), 'classifier-broken');
    yml = fs.readFileSync(path.join(dir, 'serverless.yml'), 'utf8');
    handler = fs.readFileSync(path.join(dir, 'src', 'classify.ts'), 'utf8');
  });

  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('fails on a misspelt function option, naming it (osls)', async () => {
    fs.writeFileSync(path.join(dir, 'serverless.yml'), yml.replace('    minInstances: 1', '    minInstance: 1'));
    const result = await sls('osls', ['package', '--stage', 'local'], dir);
    assert.notEqual(result.code, 0);
    assert.match(result.output, /functions\.classify/);
    assert.match(result.output, /minInstance\b/);
  });

  it('fails on a misspelt custom.gpu option even where the framework only warns (serverless@3)', async () => {
    const relaxed = yml.replace('configValidationMode: error\n', '').replace('    client: { out: generated/client }', '    clinet: { out: generated/client }');
    fs.writeFileSync(path.join(dir, 'serverless.yml'), relaxed);
    const result = await sls('serverless@3', ['package', '--stage', 'local'], dir);
    assert.notEqual(result.code, 0);
    assert.match(result.output, /Unknown option in custom\.gpu: "clinet"/);
  });

  it('fails on an impossible annotation value, naming the file, the export and the field', async () => {
    fs.writeFileSync(path.join(dir, 'src', 'classify.ts'), handler.replace('maxInstances: 20', 'maxInstances: 0'));
    const result = await sls('osls', ['package', '--stage', 'local'], dir);
    assert.notEqual(result.code, 0);
    assert.match(result.output, /src\/classify\.ts: classify/);
    assert.match(result.output, /maxInstances must be >= 1/);
  });

  it('fails when the handler names an export that is not annotated', async () => {
    fs.writeFileSync(path.join(dir, 'serverless.yml'), yml.replace('handler: src/classify.classify', 'handler: src/classify.classifier'));
    const result = await sls('osls', ['package', '--stage', 'local'], dir);
    assert.notEqual(result.code, 0);
    assert.match(result.output, /functions\.classify\.handler: src\/classify\.ts has no export "classifier"/);
  });
});

describe('the typed client under tsc', function () {
  this.timeout(120_000);
  let dir = '';

  before(async () => {
    dir = copyService(path.join(ROOT, 'examples', 'classifier'), 'classifier-typed');
    const written = await sls('osls', ['gpu', 'client', '--stage', 'local'], dir);
    assert.equal(written.code, 0, written.output);
    assert.ok(fs.existsSync(path.join(dir, 'generated', 'client', 'index.d.ts')));
  });

  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('compiles the example’s caller and handlers with --strict', async () => {
    const result = await run(process.execPath, [TSC, '-p', 'tsconfig.json'], dir);
    assert.equal(result.code, 0, result.output);
  });

  it('fails to compile a caller that passes the wrong input or misreads the output', async () => {
    fs.writeFileSync(
      path.join(dir, 'bad-caller.ts'),
      [
        `import { classify, train } from './generated/client';`,
        `export async function wrong(): Promise<void> {`,
        `  await classify.remote({ txt: 'misspelt field' });`,
        `  await train.spawn({ dataset: 42 });`,
        `  const out = await classify.remote({ text: 'ok' });`,
        `  const n: number = out.label;`,
        `  console.log(n);`,
        `}`,
      ].join('\n'),
    );
    const result = await run(process.execPath, [TSC, '--noEmit', '--strict', '--moduleResolution', 'bundler', '--module', 'esnext', '--target', 'es2022', '--skipLibCheck', '--types', 'node', 'bad-caller.ts'], dir);
    assert.notEqual(result.code, 0);
    assert.match(result.output, /bad-caller\.ts\(3,[0-9]+\): error TS2561: .*'txt' does not exist in type 'ClassifyInput'/);
    assert.match(result.output, /bad-caller\.ts\(4,[0-9]+\): error TS2322/);
    assert.match(result.output, /bad-caller\.ts\(6,[0-9]+\): error TS2322: Type 'string' is not assignable to type 'number'/);
  });
});

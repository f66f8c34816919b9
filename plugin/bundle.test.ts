import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { bundleShim } from './bundle';

describe('bundleShim', function () {
  this.timeout(60_000);
  let dir = '';
  before(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sgpu-shim-'))));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('reuses the bundle while none of its inputs changed, and rebuilds when one did', async () => {
    const out = path.join(dir, 'shim.js');
    await bundleShim(out);
    const inputs = JSON.parse(fs.readFileSync(`${out}.inputs.json`, 'utf8')) as Array<[string, number, number]>;
    assert.ok(inputs.some(([file]) => file.endsWith(path.join('runtime-shim', 'server.js'))), 'the shim server is an input');
    fs.writeFileSync(out, '// marker: not rebuilt\n');
    await bundleShim(out);
    assert.equal(fs.readFileSync(out, 'utf8'), '// marker: not rebuilt\n', 'inputs unchanged: reused');
    // An input that looks changed (another size) forces a rebuild.
    inputs[0][1] += 1;
    fs.writeFileSync(`${out}.inputs.json`, JSON.stringify(inputs));
    await bundleShim(out);
    assert.match(fs.readFileSync(out, 'utf8'), /listening on/, 'rebuilt from the sources');
  });
});

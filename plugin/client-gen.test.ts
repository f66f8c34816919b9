import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { bindingName, renderCommonJs, renderDeclarations, renderEsm, renderPackageJson, type ClientRequest } from './client-gen';
import { readContracts, type ContractRequest } from './contract';
import { TESTDATA } from './test-helpers';

const GOLDEN = path.join(TESTDATA, 'golden', 'kitchen-client');

function kitchenRequest(): ClientRequest {
  const file = path.join(TESTDATA, 'handlers', 'kitchen.ts');
  const requests: ContractRequest[] = ['embed', 'shout', 'nothing'].map((name) => ({ file, exportName: name, functionName: name }));
  const contracts = readContracts(requests, TESTDATA);
  return {
    packageName: 'kitchen-client',
    service: 'kitchen',
    stage: 'test',
    functions: requests.map((r) => ({
      name: r.functionName,
      relFile: 'handlers/kitchen.ts',
      contract: contracts.get(r)!,
      target: 'local' as const,
      deployed: r.functionName === 'nothing' ? undefined : { target: 'local' as const, endpoints: ['http://127.0.0.1:4000'] },
    })),
  };
}

describe('client generator', () => {
  const request = kitchenRequest();
  const rendered: Record<string, string> = {
    'index.d.ts': renderDeclarations(request),
    'index.cjs': renderCommonJs(request),
    'index.mjs': renderEsm(request),
    'package.json': renderPackageJson(request),
  };

  // UPDATE_GOLDEN=1 npm run test:unit rewrites the golden files; review their diff like code.
  for (const [name, content] of Object.entries(rendered)) {
    it(`renders ${name} as in the golden file`, () => {
      const golden = path.join(GOLDEN, name);
      if (process.env.UPDATE_GOLDEN === '1') {
        fs.mkdirSync(GOLDEN, { recursive: true });
        fs.writeFileSync(golden, content);
      }
      assert.equal(content, fs.readFileSync(golden, 'utf8'));
    });
  }

  it('imports nothing but serverless-gpu/client', () => {
    for (const name of ['index.d.ts', 'index.cjs', 'index.mjs']) {
      const content = rendered[name];
      const imports = [...content.matchAll(/(?:from |require\()'([^']+)'/g)].map((m) => m[1]);
      assert.ok(imports.length > 0);
      assert.deepEqual([...new Set(imports)], ['serverless-gpu/client']);
    }
  });

  it('bakes the deployed endpoints in, and none for a function not deployed', () => {
    const cjs = rendered['index.cjs'];
    const deployment = JSON.parse(cjs.slice(cjs.indexOf('{'), cjs.indexOf(';\nexports.deployment'))) as {
      functions: Record<string, { endpoints: string[] }>;
    };
    assert.deepEqual(deployment.functions.embed.endpoints, ['http://127.0.0.1:4000']);
    assert.deepEqual(deployment.functions.nothing.endpoints, []);
  });

  it('makes valid, collision-free export names from function names', () => {
    assert.equal(bindingName('embed-text'), 'embedText');
    assert.equal(bindingName('2pass'), 'fn2pass');
    assert.equal(bindingName('deployment'), 'deploymentFn');
  });
});

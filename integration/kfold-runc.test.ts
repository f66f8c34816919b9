/**
 * examples/kfold's K folds through `map` on the Batch path, each job run as Batch runs it: the function's
 * built image (buildah environment + the product's code layer, pushed to docker-registry on loopback,
 * pulled with skopeo, unpacked with umoci) started under runc, one container per array child, its data
 * on an S3-protocol server (s3rver) on loopback and its control plane a fake Batch answering the real
 * AWS SDK. The only stand-ins: the Batch control plane, and the base image (this machine's Node).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { bindFunction, type Deployment } from '../runtime-shim/client';
import { FakeBatch } from './fake-batch';
import { CLIS, ROOT, copyService, run } from './helpers';
import { buildNodeBase, commandExists, startRegistry, unpackImage, type TestRegistry, type UnpackedImage } from './registry';
import { s3rverEnv, startS3rver, type TestS3 } from './s3rver';

interface FoldResult {
  fold: number;
  trainedOn: number;
  testedOn: number;
  accuracy: number;
}

const BUCKET = 'kfold-calls';
const CALL_PREFIX = 'calls/kfold/dev/trainFold/';
const JOB_DEFINITION = 'kfold-dev-trainFold';

describe('examples/kfold mapped over Batch array jobs, each fold in the built image under runc', function () {
  this.timeout(600_000);
  let registry: TestRegistry | undefined;
  let s3: TestS3 | undefined;
  let batch: FakeBatch | undefined;
  let image: UnpackedImage | undefined;
  let dir = '';
  const saved: Record<string, string | undefined> = {};

  before(async () => {
    const missing = ['docker-registry', 'buildah', 'skopeo', 'umoci', 'runc'].filter((tool) => !commandExists(tool));
    if (missing.length > 0) throw new Error(`missing ${missing.join(', ')}: .ci/run installs them with apt-get`);
    registry = await startRegistry();
    const base = buildNodeBase(registry.host);
    // The example as a user would ship it, built against this machine's registry and base instead of ECR and CUDA.
    dir = copyService(path.join(ROOT, 'examples', 'kfold'), 'kfold-runc');
    const yml = path.join(dir, 'serverless.yml');
    fs.writeFileSync(yml, fs.readFileSync(yml, 'utf8').replace(/registry: \S+/, `registry: ${registry.host}/ml\n  builder: buildah`));
    const fold = path.join(dir, 'src', 'fold.ts');
    fs.writeFileSync(fold, fs.readFileSync(fold, 'utf8').replace(`'nvidia/cuda:12.4.1-runtime-ubuntu22.04'`, JSON.stringify(base)));
    const packaged = await run(process.execPath, [CLIS.osls, 'package', '--stage', 'dev'], dir, 300_000);
    assert.equal(packaged.code, 0, packaged.output);
    const reference = (JSON.parse(fs.readFileSync(path.join(dir, '.serverless', 'gpu', 'images.json'), 'utf8')) as Record<string, { reference: string }>).trainFold.reference;
    image = unpackImage(reference);

    s3 = await startS3rver([BUCKET]);
    const hostEnv = { ...s3rverEnv(s3), AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' };
    batch = new FakeBatch({ [JOB_DEFINITION]: { image, environment: { SGPU_MODE: 'batch', SGPU_CALL_BUCKET: BUCKET, SGPU_CALL_PREFIX: CALL_PREFIX } } }, hostEnv);
    const batchEndpoint = await batch.start();
    for (const [name, value] of Object.entries({ ...hostEnv, AWS_ENDPOINT_URL_BATCH: batchEndpoint })) {
      saved[name] = process.env[name];
      process.env[name] = value;
    }
  });

  after(async () => {
    for (const [name, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
    await batch?.stop();
    await s3?.stop();
    image?.remove();
    await registry?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('runs K folds as one array job of K containers and returns the folds in order', async () => {
    const deployment: Deployment = {
      service: 'kfold',
      stage: 'dev',
      functions: {
        trainFold: {
          target: 'batch',
          endpoints: [],
          batch: { region: 'us-east-1', jobQueue: 'kfold-dev-queue', jobDefinition: JOB_DEFINITION, callBucket: BUCKET, callPrefix: CALL_PREFIX },
        },
      },
    };
    const trainFold = bindFunction<{ fold: number; k: number; seed: number }, FoldResult>(deployment, 'trainFold', { timeoutMs: 240_000 });
    const k = 5;
    const folds = await trainFold.map(Array.from({ length: k }, (_, fold) => ({ fold, k, seed: 2026 }))).catch((error: unknown) => {
      throw new Error(`${(error as Error).message}\ncontainer output:\n${batch!.runs.map((r) => r.output).join('\n---\n')}`);
    });
    assert.deepEqual(folds.map((f) => f.fold), [0, 1, 2, 3, 4]);
    for (const f of folds) {
      assert.equal(f.trainedOn + f.testedOn, 300);
      assert.ok(f.accuracy > 0.6, `fold ${f.fold}: accuracy ${f.accuracy}`);
    }
    const submits = batch!.requests.filter((r) => r.operation === 'SubmitJob');
    assert.equal(submits.length, 1);
    assert.deepEqual(submits[0].body.arrayProperties, { size: k });
    assert.equal(batch!.runs.length, k, 'one container per fold');
    assert.deepEqual(batch!.runs.map((r) => r.env.AWS_BATCH_JOB_ARRAY_INDEX).sort(), ['0', '1', '2', '3', '4']);
    assert.ok(batch!.runs.every((r) => r.exitCode === 0), batch!.runs.map((r) => r.output).join('\n'));
  });
});

/**
 * The AWS Batch path end to end on real parts: examples/kfold packaged by the real CLI (osls), its
 * function artifact run by the shim in batch mode, inputs and outputs in a real S3-protocol server
 * (s3rver on loopback), and the real AWS SDK clients — S3 through AWS_ENDPOINT_URL_S3 and Batch through
 * AWS_ENDPOINT_URL_BATCH, the latter answered by a fake control plane (integration/fake-batch.ts) that
 * launches the artifact as Batch would launch the job definition's container.
 *
 * Not covered here: real AWS Batch scheduling, retries, IAM and CloudWatch logs.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import S3rver from 's3rver';
import { GetObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { bindFunction, isRemoteError, type Deployment, type MapError, type RemoteFunction } from '../runtime-shim/client';
import { FakeBatch } from './fake-batch';
import { ROOT, copyService, sls } from './helpers';

interface FoldInput {
  fold: number;
  k: number;
  seed: number;
  epochs?: number;
}
interface FoldResult {
  fold: number;
  trainedOn: number;
  testedOn: number;
  accuracy: number;
  logLoss: number;
}

const REGION = 'us-east-1';
const BUCKET = 'kfold-calls';
const CALL_PREFIX = 'calls/kfold/local/trainFold/';
const JOB_QUEUE = 'arn:aws:batch:us-east-1:123456789012:job-queue/kfold-local';
const JOB_DEFINITION = 'kfold-local-trainFold';
const BROKEN_DEFINITION = 'kfold-local-trainFold-without-prefix';
const ROWS = 300;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const AWS_ENV = ['AWS_ENDPOINT_URL_S3', 'AWS_ENDPOINT_URL_BATCH', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'AWS_REGION', 'AWS_PROFILE', 'AWS_CONFIG_FILE', 'AWS_SHARED_CREDENTIALS_FILE'];

function envOf(submit: Record<string, unknown>): Record<string, string> {
  const environment = (submit.containerOverrides as { environment?: Array<{ name: string; value: string }> } | undefined)?.environment ?? [];
  return Object.fromEntries(environment.map((e) => [e.name, e.value]));
}

describe('examples/kfold on AWS Batch (s3rver + a fake Batch control plane + the packaged artifact)', function () {
  this.timeout(240_000);
  const saved: Record<string, string | undefined> = {};
  let dir = '';
  let tmp = '';
  let s3rver: S3rver | undefined;
  let batch: FakeBatch | undefined;
  let s3: S3Client;
  let trainFold: RemoteFunction<FoldInput, FoldResult>;
  let deployment: Deployment;

  const listCall = async (callId: string): Promise<string[]> => {
    const listed = await s3.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: `${CALL_PREFIX}${callId}/` }));
    return (listed.Contents ?? []).map((o) => o.Key!.slice(`${CALL_PREFIX}${callId}/`.length)).sort();
  };
  const readJson = async (key: string): Promise<unknown> => {
    const reply = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
    return JSON.parse(await reply.Body!.transformToString());
  };

  before(async function () {
    // The function's artifact, as `sls package` builds it (the local target bundles without images).
    dir = copyService(path.join(ROOT, 'examples', 'kfold'), `kfold-batch-${process.pid}`);
    const packaged = await sls('osls', ['package', '--stage', 'local'], dir);
    assert.equal(packaged.code, 0, packaged.output);
    const artifactDir = path.join(dir, '.serverless', 'gpu', 'trainFold');
    for (const file of ['shim.js', 'bundle.js', 'manifest.json']) assert.ok(fs.existsSync(path.join(artifactDir, file)), `${file} in ${artifactDir}`);

    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'sgpu-batch-it-'));
    s3rver = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory: tmp, configureBuckets: [{ name: BUCKET, configs: [] }] });
    const { port } = await s3rver.run();
    const s3Endpoint = `http://127.0.0.1:${port}`;

    const hostEnv = { AWS_REGION: REGION, AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER', AWS_ENDPOINT_URL_S3: s3Endpoint };
    batch = new FakeBatch(
      {
        [JOB_DEFINITION]: { artifactDir, environment: { SGPU_MODE: 'batch', SGPU_CALL_BUCKET: BUCKET, SGPU_CALL_PREFIX: CALL_PREFIX } },
        [BROKEN_DEFINITION]: { artifactDir, environment: { SGPU_MODE: 'batch', SGPU_CALL_BUCKET: BUCKET } },
      },
      hostEnv,
    );
    const batchEndpoint = await batch.start();

    for (const name of AWS_ENV) saved[name] = process.env[name];
    for (const name of AWS_ENV) delete process.env[name];
    Object.assign(process.env, hostEnv, {
      AWS_ENDPOINT_URL_BATCH: batchEndpoint,
      AWS_CONFIG_FILE: path.join(tmp, 'no-config'),
      AWS_SHARED_CREDENTIALS_FILE: path.join(tmp, 'no-credentials'),
    });
    s3 = new S3Client({ region: REGION, endpoint: s3Endpoint, forcePathStyle: true, credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } });

    deployment = {
      service: 'kfold',
      stage: 'local',
      functions: {
        trainFold: {
          target: 'batch',
          endpoints: [],
          batch: { region: REGION, jobQueue: JOB_QUEUE, jobDefinition: JOB_DEFINITION, callBucket: BUCKET, callPrefix: CALL_PREFIX },
        },
      },
    };
    trainFold = bindFunction<FoldInput, FoldResult>(deployment, 'trainFold', { timeoutMs: 120_000 });
  });

  after(async () => {
    for (const name of AWS_ENV) {
      if (saved[name] === undefined) delete process.env[name];
      else process.env[name] = saved[name];
    }
    s3?.destroy();
    await batch?.stop();
    await s3rver?.close();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
    if (dir) {
      fs.rmSync(dir, { recursive: true, force: true });
      try {
        fs.rmdirSync(path.dirname(dir)); // this run's folder, when nothing else is in it
      } catch {
        // another test of this run still has a service there
      }
    }
  });

  it('maps over K=5 folds as one array job of size 5, results in input order', async () => {
    const k = 5;
    const before = batch!.submitted().length;
    const describedBefore = batch!.described().length;
    const folds = await trainFold.map(Array.from({ length: k }, (_, fold) => ({ fold, k, seed: 2026 })));

    const submits = batch!.submitted().slice(before);
    assert.equal(submits.length, 1, 'one SubmitJob for the whole map');
    const [submit] = submits;
    assert.equal(submit.jobQueue, JOB_QUEUE);
    assert.equal(submit.jobDefinition, JOB_DEFINITION);
    assert.deepEqual(submit.arrayProperties, { size: k });
    const callId = envOf(submit).SGPU_CALL_ID;
    assert.match(callId, UUID);
    assert.equal(submit.jobName, `trainFold-${callId}`);
    // The client polled the parent array job only (every child left a result, so none was described).
    const parentId = batch!.requests.find((r) => r.body === submit)!.jobId!;
    const polls = batch!.described().slice(describedBefore);
    assert.ok(polls.length >= 1);
    assert.ok(polls.every((ids) => ids.length === 1 && ids[0] === parentId), JSON.stringify(polls));

    assert.deepEqual(folds.map((f) => f.fold), [0, 1, 2, 3, 4]);
    for (const f of folds) {
      assert.equal(f.trainedOn + f.testedOn, ROWS);
      assert.equal(f.testedOn, ROWS / k);
      assert.ok(f.accuracy > 0.6 && f.accuracy <= 1, `fold ${f.fold}: accuracy ${f.accuracy}`);
      assert.ok(Number.isFinite(f.logLoss) && f.logLoss > 0);
    }

    // Batch launched one container per child, all at once, each with its index.
    const runs = batch!.runs.filter((run) => run.env.SGPU_CALL_ID === callId);
    assert.equal(runs.length, k);
    assert.deepEqual(runs.map((run) => run.env.AWS_BATCH_JOB_ARRAY_INDEX).sort(), ['0', '1', '2', '3', '4']);
    for (const run of runs) {
      assert.equal(run.exitCode, 0, run.output);
      assert.equal(run.env.SGPU_MODE, 'batch');
      assert.equal(run.env.SGPU_CALL_PREFIX, CALL_PREFIX);
      assert.match(run.output, /setup finished in \d+ ms/);
    }
    const firstStop = Math.min(...runs.map((run) => run.stoppedAt!));
    assert.ok(runs.every((run) => run.startedAt < firstStop), 'the children ran concurrently');

    // The call's objects in the bucket.
    const keys = await listCall(callId);
    assert.deepEqual(keys, [...Array.from({ length: k }, (_, i) => `input-${i}.json`), ...Array.from({ length: k }, (_, i) => `output-${i}.json`)].sort());
    assert.deepEqual(await readJson(`${CALL_PREFIX}${callId}/input-2.json`), { fold: 2, k, seed: 2026 });
    assert.deepEqual(await readJson(`${CALL_PREFIX}${callId}/output-3.json`), folds[3]);
  });

  it('spawns a job, reports its status and gets its output', async () => {
    const before = batch!.submitted().length;
    const call = await trainFold.spawn({ fold: 1, k: 5, seed: 2026 });
    const [jobId, callId] = call.id.split(':');
    assert.match(jobId, UUID);
    assert.match(callId, UUID);
    const submits = batch!.submitted().slice(before);
    assert.equal(submits.length, 1);
    assert.equal(submits[0].arrayProperties, undefined, 'a single job');
    assert.equal(envOf(submits[0]).SGPU_CALL_ID, callId);
    assert.deepEqual(await listCall(callId), ['input.json']);

    assert.ok(['running', 'succeeded'].includes(await call.status()));
    const result = await call.get({ timeout: 60_000 });
    assert.equal(result.fold, 1);
    assert.equal(result.testedOn, 60);
    assert.equal(await call.status(), 'succeeded');
    assert.deepEqual(await listCall(callId), ['input.json', 'output.json']);
  });

  it('remote() is spawn + get: one plain job, its output', async () => {
    const before = batch!.submitted().length;
    const result = await trainFold.remote({ fold: 0, k: 5, seed: 2026, epochs: 5 });
    assert.equal(result.fold, 0);
    assert.ok(result.accuracy > 0.5);
    const submits = batch!.submitted().slice(before);
    assert.equal(submits.length, 1);
    assert.equal(submits[0].arrayProperties, undefined);
    assert.equal(batch!.runs.filter((run) => run.env.SGPU_CALL_ID === envOf(submits[0]).SGPU_CALL_ID).length, 1);
  });

  it('surfaces a handler error as a RemoteError with the remote stack; the job exited 1', async () => {
    const before = batch!.submitted().length;
    await assert.rejects(trainFold.remote({ fold: 7, k: 5, seed: 2026 }), (error: unknown) => {
      assert.ok(isRemoteError(error), String(error));
      assert.equal(error.type, 'HandlerError');
      assert.equal(error.remoteName, 'RangeError');
      assert.match(error.message, /trainFold: fold must be in 0\.\.4, got 7/);
      assert.match(error.remoteStack ?? '', /^RangeError: fold must be in 0\.\.4, got 7\n\s+at /);
      assert.match(error.remoteStack ?? '', /bundle\.js/);
      return true;
    });
    const [submit] = batch!.submitted().slice(before);
    const callId = envOf(submit).SGPU_CALL_ID;
    const runs = batch!.runs.filter((run) => run.env.SGPU_CALL_ID === callId);
    assert.equal(runs.length, 1);
    assert.equal(runs[0].exitCode, 1, runs[0].output);
    assert.deepEqual(await listCall(callId), ['error.json', 'input.json']);
  });

  it('refuses an input that breaks the contract with a ValidationError (exit 1)', async () => {
    await assert.rejects(trainFold.remote({ fold: 1, k: 5 } as FoldInput), (error: unknown) => {
      assert.ok(isRemoteError(error));
      assert.equal(error.type, 'ValidationError');
      assert.equal(error.path, '/seed');
      return true;
    });
    const last = batch!.runs[batch!.runs.length - 1];
    assert.equal(last.exitCode, 1);
  });

  it('mapSettled over an array job with a failing child: every outcome, in order', async () => {
    const before = batch!.submitted().length;
    const settled = await trainFold.mapSettled([
      { fold: 0, k: 3, seed: 1 },
      { fold: 9, k: 3, seed: 1 },
      { fold: 2, k: 3, seed: 1 },
    ]);
    const submits = batch!.submitted().slice(before);
    assert.equal(submits.length, 1);
    assert.deepEqual(submits[0].arrayProperties, { size: 3 });
    assert.equal(settled.length, 3);
    assert.ok(settled[0].ok && settled[0].value.fold === 0);
    assert.ok(settled[2].ok && settled[2].value.fold === 2);
    assert.ok(!settled[1].ok);
    assert.equal(settled[1].error.type, 'HandlerError');
    assert.match(settled[1].error.message, /fold must be in 0\.\.2, got 9/);

    await assert.rejects(trainFold.map([{ fold: 0, k: 2, seed: 1 }, { fold: 5, k: 2, seed: 1 }]), (error: unknown) => {
      const mapError = error as MapError<FoldResult>;
      assert.equal(mapError.name, 'MapError');
      assert.deepEqual(mapError.succeeded.map((s) => s.index), [0]);
      assert.deepEqual(mapError.failed.map((f) => f.index), [1]);
      return true;
    });
  });

  it("reports a job that failed without writing error.json by Batch's reasons", async () => {
    const broken = bindFunction<FoldInput, FoldResult>(
      { ...deployment, functions: { trainFold: { ...deployment.functions.trainFold, batch: { ...deployment.functions.trainFold.batch!, jobDefinition: BROKEN_DEFINITION } } } },
      'trainFold',
      { timeoutMs: 60_000 },
    );
    await assert.rejects(broken.remote({ fold: 0, k: 5, seed: 1 }), (error: unknown) => {
      assert.ok(isRemoteError(error));
      assert.equal(error.type, 'HandlerError');
      assert.match(error.message, /job [0-9a-f-]{36} failed \(Essential container in task exited; exit code 1; log stream fake\/default\//);
      return true;
    });
    const last = batch!.runs[batch!.runs.length - 1];
    assert.match(last.output, /SGPU_CALL_PREFIX is not set/);

    // The same for the children of an array job: each child's own reasons, asked for by child id.
    const describedBefore = batch!.described().length;
    const settled = await broken.mapSettled([{ fold: 0, k: 2, seed: 1 }, { fold: 1, k: 2, seed: 1 }]);
    const parentId = batch!.requests.filter((r) => r.operation === 'SubmitJob').pop()!.jobId!;
    assert.equal(settled.length, 2);
    settled.forEach((item, index) => {
      assert.ok(!item.ok);
      assert.equal(item.error.type, 'HandlerError');
      assert.ok(item.error.message.includes(`job ${parentId}:${index} failed (Essential container in task exited; exit code 1`), item.error.message);
    });
    assert.deepEqual(batch!.described().slice(describedBefore).pop(), [`${parentId}:0`, `${parentId}:1`]);
  });

  it('fails a SubmitJob the control plane refuses without running anything', async () => {
    const unknown = bindFunction<FoldInput, FoldResult>(
      { ...deployment, functions: { trainFold: { ...deployment.functions.trainFold, batch: { ...deployment.functions.trainFold.batch!, jobDefinition: 'no-such-definition' } } } },
      'trainFold',
    );
    const runs = batch!.runs.length;
    await assert.rejects(unknown.spawn({ fold: 0, k: 5, seed: 1 }), (error: unknown) => {
      assert.ok(isRemoteError(error));
      assert.equal(error.type, 'BadRequest');
      assert.match(error.message, /cannot submit a job to .*job definition no-such-definition does not exist/);
      return true;
    });
    assert.equal(batch!.runs.length, runs);
  });
});

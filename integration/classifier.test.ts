/**
 * examples/classifier end to end on the local target, with each real framework CLI: deploy, info,
 * invoke, the generated client (remote, map, spawn/get, errors), logs, redeploy, remove.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { MapError, RemoteFunction } from '../runtime-shim/client';
import { CLIS, ROOT, copyService, importEsm, loadClient, processesMentioning, sls, type Cli } from './helpers';

interface ClassifierClient {
  classify: RemoteFunction<{ text: string }, { label: string; score: number; model: string }>;
  train: RemoteFunction<{ dataset: string; holdout?: number }, { version: string; accuracy: number; trainedOn: number }>;
  isRemoteError(error: unknown): error is Error & { type: string; path?: string; remoteStack?: string; remoteName?: string };
  MapError: typeof MapError;
}

interface LocalState {
  functions: Record<string, { supervisorPid: number; endpoints: string[] }>;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

for (const cli of Object.keys(CLIS) as Cli[]) {
  describe(`examples/classifier on the local target with ${cli}`, function () {
    this.timeout(180_000);
    let dir = '';
    let stateFile = '';
    const readState = (): LocalState => JSON.parse(fs.readFileSync(stateFile, 'utf8')) as LocalState;
    let client: ClassifierClient;

    before(async () => {
      dir = copyService(path.join(ROOT, 'examples', 'classifier'), `classifier-${cli.replace(/[^a-z0-9]/g, '')}`);
      stateFile = path.join(dir, '.serverless-gpu', 'local', 'local', 'state.json');
      const deployed = await sls(cli, ['deploy', '--stage', 'local'], dir);
      assert.equal(deployed.code, 0, deployed.output);
      assert.match(deployed.output, /classify \(local\): http:\/\/127\.0\.0\.1:\d+/);
      client = loadClient<ClassifierClient>(path.join(dir, 'generated', 'client'));
    });

    after(async () => {
      await sls(cli, ['remove', '--stage', 'local'], dir);
      fs.rmSync(dir, { recursive: true, force: true });
    });

    it('lists the deployed functions and their readiness with sls info', async () => {
      const info = await sls(cli, ['info', '--stage', 'local'], dir);
      assert.equal(info.code, 0, info.output);
      assert.match(info.output, /classify \(local\): 1\/1 instances ready/);
      assert.match(info.output, /train \(local\): 1\/1 instances ready/);
    });

    it('surfaces a handler error as a remote error: classify before any training', async () => {
      await assert.rejects(client.classify.remote({ text: 'nurse' }), (error: unknown) => {
        assert.ok(client.isRemoteError(error));
        assert.equal(error.type, 'HandlerError');
        assert.match(error.message, /no trained model/);
        assert.match(error.remoteStack ?? '', /handle/);
        return true;
      });
    });

    it('trains through spawn, then serves the model through remote and map', async () => {
      const call = await client.train.spawn({ dataset: 'jobs-2026' });
      assert.ok(call.id.length > 10);
      assert.ok(['running', 'succeeded'].includes(await call.status()));
      const trained = await call.get({ timeout: 60_000 });
      assert.equal(await call.status(), 'succeeded');
      assert.equal(trained.trainedOn, 96);
      assert.ok(trained.accuracy >= 0.6, `held-out accuracy ${trained.accuracy}`);

      const one = await client.classify.remote({ text: 'senior data engineer spark' });
      assert.equal(one.label, 'data-engineer');
      assert.equal(one.model, trained.version);

      const texts = ['icu registered nurse', 'cdl truck driver long haul', 'high school math teacher', 'tax accountant'];
      const many = await client.classify.map(texts.map((text) => ({ text })), { concurrency: 2 });
      assert.deepEqual(
        many.map((r) => r.label),
        ['registered-nurse', 'truck-driver', 'teacher', 'accountant'],
      );
    });

    it('rejects a bad input with the path in the input, and keeps serving', async () => {
      await assert.rejects(client.classify.remote({ text: 42 } as unknown as { text: string }), (error: unknown) => {
        assert.ok(client.isRemoteError(error));
        assert.equal(error.type, 'ValidationError');
        assert.equal(error.path, '/text');
        return true;
      });
      const settled = await client.classify.mapSettled([{ text: 'pediatric nurse' }, { txt: 'x' } as unknown as { text: string }]);
      assert.equal(settled[0].ok, true);
      assert.equal(settled[1].ok, false);
      const after = await client.classify.remote({ text: 'pediatric nurse' });
      assert.equal(after.label, 'registered-nurse');
    });

    it('reports a thrown error of a spawned call with its remote stack', async () => {
      const call = await client.train.spawn({ dataset: 'no-such-set' });
      await assert.rejects(call.get({ timeout: 30_000 }), (error: unknown) => {
        assert.ok(client.isRemoteError(error));
        assert.equal(error.type, 'HandlerError');
        assert.match(error.message, /unknown data set "no-such-set"/);
        assert.match(error.remoteStack ?? '', /train/);
        return true;
      });
    });

    it('calls a function with sls invoke, and fails clearly on bad input', async () => {
      const ok = await sls(cli, ['invoke', '--stage', 'local', '-f', 'classify', '--data', '{"text":"middle school science teacher"}'], dir);
      assert.equal(ok.code, 0, ok.output);
      assert.equal((JSON.parse(ok.stdout.slice(ok.stdout.indexOf('{'))) as { label: string }).label, 'teacher');
      const bad = await sls(cli, ['invoke', '--stage', 'local', '-f', 'classify', '--data', '{"txt":"x"}'], dir);
      assert.notEqual(bad.code, 0);
      assert.match(bad.output, /ValidationError/);
      assert.match(bad.output, /\/text/);
    });

    it('prints the function’s log with sls logs', async () => {
      const logs = await sls(cli, ['logs', '--stage', 'local', '-f', 'classify'], dir);
      assert.equal(logs.code, 0, logs.output);
      assert.match(logs.output, /ready after setup in \d+ ms/);
      assert.match(logs.output, /loaded model jobs-2026-/);
    });

    it('works from ESM too: the client package’s import entry', async () => {
      const esm = (await importEsm(pathToFileURL(path.join(dir, 'generated', 'client', 'index.mjs')).href)) as ClassifierClient;
      assert.equal((await esm.classify.remote({ text: 'kindergarten teacher' })).label, 'teacher');
    });

    if (cli === 'osls') {
      it('replaces the old processes when deployed again', async () => {
        const before = readState();
        const redeployed = await sls(cli, ['deploy', '--stage', 'local'], dir);
        assert.equal(redeployed.code, 0, redeployed.output);
        for (const fn of Object.values(before.functions)) assert.equal(isAlive(fn.supervisorPid), false);
        const fresh = loadClient<ClassifierClient>(path.join(dir, 'generated', 'client'));
        // The model written by train survives a redeploy: it lives where the weights live.
        assert.equal((await fresh.classify.remote({ text: 'truck driver' })).label, 'truck-driver');
        client = fresh;
      });
    }

    it('stops every process it started with sls remove', async () => {
      const state = readState();
      assert.ok(processesMentioning(dir).length >= 4, 'a supervisor and an instance per function run before remove');
      const removed = await sls(cli, ['remove', '--stage', 'local'], dir);
      assert.equal(removed.code, 0, removed.output);
      for (const fn of Object.values(state.functions)) assert.equal(isAlive(fn.supervisorPid), false);
      assert.deepEqual(processesMentioning(dir), []);
      assert.equal(fs.existsSync(stateFile), false);
    });
  });
}

/** The Batch transport's pure parts: job names and call ids (its calls are covered by integration/batch.test.ts). */
import assert from 'node:assert/strict';
import { BatchTransport, jobNameFor, parseCallId } from './batch-transport';
import { isRemoteError } from './errors';
import { callKey } from '../batch-store';

describe('BatchTransport helpers', () => {
  const uuid = '0b5f9a8e-3c1d-4c2e-9f00-1234567890ab';

  it('names jobs <function>-<callId> within Batch limits (128 letters, digits, - and _)', () => {
    assert.equal(jobNameFor('trainFold', uuid), `trainFold-${uuid}`);
    assert.equal(jobNameFor('train.fold v2', uuid), `train-fold-v2-${uuid}`);
    assert.equal(jobNameFor('_private', uuid), `f_private-${uuid}`);
    const long = jobNameFor('x'.repeat(300), uuid);
    assert.equal(long.length, 128);
    assert.ok(long.endsWith(`-${uuid}`));
    assert.match(long, /^[A-Za-z0-9][A-Za-z0-9_-]*$/);
  });

  it('splits a spawned call id into job id and call id', () => {
    assert.deepEqual(parseCallId(`job-1:${uuid}`), { jobId: 'job-1', callId: uuid });
    assert.equal(parseCallId('no-colon'), undefined);
    assert.equal(parseCallId(':x'), undefined);
    assert.equal(parseCallId('x:'), undefined);
  });

  it('lays out call objects under the prefix, with or without a trailing slash', () => {
    assert.equal(callKey('calls/s/dev/f/', 'c1', 'input'), 'calls/s/dev/f/c1/input.json');
    assert.equal(callKey('calls/s/dev/f', 'c1', 'output', 3), 'calls/s/dev/f/c1/output-3.json');
    assert.equal(callKey('', 'c1', 'error', 0), 'c1/error-0.json');
  });

  it('refuses an incomplete Batch deployment at once', () => {
    assert.throws(
      () => new BatchTransport({ functionName: 'f', batch: { region: 'us-east-1', jobQueue: '', jobDefinition: 'd', callBucket: '', callPrefix: 'p/' } }),
      (error: unknown) => isRemoteError(error) && /no jobQueue, callBucket/.test(error.message),
    );
  });

  it('rejects a malformed id from status()', async () => {
    const transport = new BatchTransport({ functionName: 'f', batch: { region: 'us-east-1', jobQueue: 'q', jobDefinition: 'd', callBucket: 'b', callPrefix: 'p/' } });
    await assert.rejects(transport.status('not-a-batch-id'), (error: unknown) => isRemoteError(error) && error.type === 'NotFound');
  });
});

/**
 * Google ID tokens with the real google-auth-library against loopback servers:
 *
 * - Application Default Credentials on Google Cloud (a caller on Cloud Run/GKE/GCE): the library finds
 *   the metadata server (GCE_METADATA_HOST, a fake on 127.0.0.1) and asks it for an ID token for the
 *   service URL. This goes through `bindFunction` with `auth: 'google-id-token'`.
 * - A service-account key (GOOGLE_APPLICATION_CREDENTIALS): the library signs a JWT-bearer assertion with
 *   `target_audience` and trades it at the token endpoint. google-auth-library 10.9.1 posts it to the
 *   hard-coded https://oauth2.googleapis.com/token (the key file's `token_uri` is not read), so this case
 *   gives the library a Gaxios transporter whose interceptor sends that one URL to the loopback token server.
 *
 * The Cloud Run fake answers 503 with a non-JSON body first (instances starting), then the result, and
 * checks `Authorization: Bearer <the ID token>` on every request.
 */
import assert from 'node:assert/strict';
import { createSign, createVerify, generateKeyPairSync, type KeyObject } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { gaxios, gcpMetadata } from 'google-auth-library';
import { bindFunction, isRemoteError, type Deployment } from './index';
import { googleIdTokenHeaders } from './google-id-token';
import { HttpTransport } from './http-transport';

const GOOGLE_TOKEN_URL = 'https://oauth2.googleapis.com/token';

function b64url(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

function signJwt(payload: Record<string, unknown>, key: KeyObject): string {
  const head = `${b64url({ alg: 'RS256', typ: 'JWT', kid: 'test' })}.${b64url(payload)}`;
  const signer = createSign('RSA-SHA256');
  signer.update(head);
  return `${head}.${signer.sign(key).toString('base64url')}`;
}

function verifyJwt(token: string, key: KeyObject): Record<string, unknown> {
  const [head, payload, signature] = token.split('.');
  const verifier = createVerify('RSA-SHA256');
  verifier.update(`${head}.${payload}`);
  assert.ok(verifier.verify(key, Buffer.from(signature, 'base64url')), 'the assertion is signed with the service account key');
  assert.equal((JSON.parse(Buffer.from(head, 'base64url').toString()) as { alg: string }).alg, 'RS256');
  return JSON.parse(Buffer.from(payload, 'base64url').toString()) as Record<string, unknown>;
}

interface Loopback {
  readonly url: string;
  readonly requests: Array<{ method: string; url: string; headers: http.IncomingHttpHeaders; body: string }>;
  close(): Promise<void>;
}

async function serve(handler: (req: http.IncomingMessage, body: string, res: http.ServerResponse) => void): Promise<Loopback> {
  const requests: Loopback['requests'] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      try {
        handler(req, body, res);
      } catch (error) {
        res.writeHead(500, { 'content-type': 'text/plain' }).end(String((error as Error).stack));
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A Cloud Run service: 503 (non-JSON, like Cloud Run while instances start) on the first call, then results. */
async function cloudRunFake(expectToken: () => string): Promise<Loopback & { state: { fail: boolean } }> {
  let calls = 0;
  const state = { fail: false };
  const fake = await serve((req, body, res) => {
    calls += 1;
    if (req.headers.authorization !== `Bearer ${expectToken()}`) {
      res.writeHead(401, { 'content-type': 'text/html' }).end('<html>401 Unauthorized</html>');
      return;
    }
    if (calls === 1) {
      res.writeHead(503, { 'content-type': 'text/html' }).end('<html>Service Unavailable</html>');
      return;
    }
    if (state.fail) {
      res
        .writeHead(500, { 'content-type': 'application/json' })
        .end(JSON.stringify({ v: 1, kind: 'error', error: { type: 'HandlerError', message: 'no trained model', name: 'Error', stack: 'Error: no trained model\n    at handle' } }));
      return;
    }
    const input = (JSON.parse(body) as { input: { text: string } }).input;
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ v: 1, kind: 'result', output: { label: input.text.toUpperCase() } }));
  });
  return { ...fake, state };
}

describe('Google ID tokens (google-auth-library against loopback)', function () {
  this.timeout(30_000);
  const saved: Record<string, string | undefined> = {};
  const ENV = ['GOOGLE_APPLICATION_CREDENTIALS', 'GCE_METADATA_HOST', 'GCE_METADATA_IP', 'CLOUDSDK_CONFIG', 'METADATA_SERVER_DETECTION', 'GOOGLE_CLOUD_PROJECT'];
  let dir = '';
  const issuer = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const issued: string[] = [];
  const idToken = (audience: string, subject: string): string => {
    const now = Math.floor(Date.now() / 1000);
    const token = signJwt({ iss: 'https://accounts.google.com', aud: audience, sub: subject, email: subject, iat: now, exp: now + 3600 }, issuer.privateKey);
    issued.push(token);
    return token;
  };

  before(() => {
    for (const name of ENV) saved[name] = process.env[name];
    for (const name of ENV) delete process.env[name];
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sgpu-idtoken-'));
    process.env.CLOUDSDK_CONFIG = path.join(dir, 'gcloud'); // no gcloud ADC file from this machine's user
  });

  after(() => {
    for (const name of ENV) {
      if (saved[name] === undefined) delete process.env[name];
      else process.env[name] = saved[name];
    }
    gcpMetadata.resetIsAvailableCache();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  describe('on Google Cloud: the metadata server, through bindFunction', () => {
    let metadata: Loopback;
    let cloudRun: Awaited<ReturnType<typeof cloudRunFake>>;
    let lastToken = '';

    before(async () => {
      metadata = await serve((req, _body, res) => {
        const url = new URL(req.url ?? '/', 'http://metadata');
        if (req.headers['metadata-flavor'] !== 'Google') {
          res.writeHead(403).end('Missing Metadata-Flavor header');
          return;
        }
        const headers = { 'metadata-flavor': 'Google', 'content-type': 'application/text' };
        if (url.pathname === '/computeMetadata/v1/instance' || url.pathname === '/computeMetadata/v1/instance/') {
          res.writeHead(200, headers).end('');
        } else if (url.pathname === '/computeMetadata/v1/instance/service-accounts/default/identity') {
          lastToken = idToken(url.searchParams.get('audience') ?? '', 'caller@acme.iam.gserviceaccount.com');
          res.writeHead(200, headers).end(lastToken);
        } else {
          res.writeHead(404, headers).end('not found');
        }
      });
      cloudRun = await cloudRunFake(() => lastToken);
      process.env.GCE_METADATA_HOST = metadata.url.replace('http://', '');
      gcpMetadata.resetIsAvailableCache();
    });

    after(async () => {
      delete process.env.GCE_METADATA_HOST;
      await metadata?.close();
      await cloudRun?.close();
    });

    it('calls a Cloud Run deployment with an ID token for the service URL, retrying while it starts', async () => {
      const deployment: Deployment = {
        service: 'classifier',
        stage: 'prod',
        functions: { classify: { target: 'cloudrun', endpoints: [cloudRun.url], auth: 'google-id-token' } },
      };
      const classify = bindFunction<{ text: string }, { label: string }>(deployment, 'classify', { timeoutMs: 20_000 });
      assert.deepEqual(await classify.remote({ text: 'nurse' }), { label: 'NURSE' });
      assert.equal(cloudRun.requests.length, 2, 'a 503 while starting, then the answer');
      for (const request of cloudRun.requests) assert.equal(request.headers.authorization, `Bearer ${lastToken}`);
      const identity = metadata.requests.filter((r) => r.url.includes('/identity'));
      assert.equal(identity.length, 1, 'one ID token, reused for the retry');
      const asked = new URL(identity[0].url, 'http://metadata');
      assert.equal(asked.searchParams.get('audience'), cloudRun.url);
      assert.equal(asked.searchParams.get('format'), 'full');
      assert.equal(verifyJwt(lastToken, issuer.publicKey).aud, cloudRun.url);
    });

    it('does not retry a HandlerError (500 with the protocol envelope)', async () => {
      cloudRun.state.fail = true;
      const before = cloudRun.requests.length;
      const classify = bindFunction<{ text: string }, { label: string }>(
        { service: 'classifier', stage: 'prod', functions: { classify: { target: 'cloudrun', endpoints: [cloudRun.url], auth: 'google-id-token' } } },
        'classify',
      );
      await assert.rejects(classify.remote({ text: 'nurse' }), (error: unknown) => {
        assert.ok(isRemoteError(error));
        assert.equal(error.type, 'HandlerError');
        assert.equal(error.status, 500);
        assert.match(error.message, /no trained model/);
        return true;
      });
      assert.equal(cloudRun.requests.length - before, 1, 'one request: a handler error is final');
    });
  });

  describe('with a service-account key: the JWT-bearer grant', () => {
    let tokenServer: Loopback;
    let cloudRun: Awaited<ReturnType<typeof cloudRunFake>>;
    let lastToken = '';
    const saKey = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const email = 'deployer@acme.iam.gserviceaccount.com';
    const grants: Array<Record<string, unknown>> = [];

    before(async () => {
      tokenServer = await serve((req, body, res) => {
        const form = new URLSearchParams(body);
        if (req.method !== 'POST' || form.get('grant_type') !== 'urn:ietf:params:oauth:grant-type:jwt-bearer') {
          res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'unsupported_grant_type' }));
          return;
        }
        const claims = verifyJwt(form.get('assertion') ?? '', saKey.publicKey);
        grants.push(claims);
        lastToken = idToken(String(claims.target_audience), String(claims.iss));
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ id_token: lastToken }));
      });
      cloudRun = await cloudRunFake(() => lastToken);
      const keyFile = path.join(dir, 'sa.json');
      fs.writeFileSync(
        keyFile,
        JSON.stringify({
          type: 'service_account',
          project_id: 'acme',
          private_key_id: 'k1',
          private_key: saKey.privateKey.export({ type: 'pkcs8', format: 'pem' }),
          client_email: email,
          client_id: '1234567890',
          token_uri: `${tokenServer.url}/token`,
        }),
      );
      process.env.GOOGLE_APPLICATION_CREDENTIALS = keyFile;
    });

    after(async () => {
      delete process.env.GOOGLE_APPLICATION_CREDENTIALS;
      await tokenServer?.close();
      await cloudRun?.close();
    });

    it('trades a signed assertion with target_audience for an ID token, sent as a Bearer header', async () => {
      const transporter = new gaxios.Gaxios();
      transporter.interceptors.request.add({
        resolved: async (config) => {
          if (String(config.url) === GOOGLE_TOKEN_URL) config.url = new URL(`${tokenServer.url}/token`);
          return config;
        },
      });
      const transport = new HttpTransport({
        functionName: 'classify',
        endpoints: [`${cloudRun.url}/`],
        headers: googleIdTokenHeaders({ functionName: 'classify', authOptions: { clientOptions: { transporter } } }),
        timeoutMs: 20_000,
      });
      assert.deepEqual(await transport.call({ text: 'nurse' }), { label: 'NURSE' });
      assert.equal(cloudRun.requests.length, 2);
      assert.equal(grants.length, 1, 'the token is cached across the retry');
      assert.equal(grants[0].target_audience, cloudRun.url, 'the audience is the service URL');
      assert.equal(grants[0].iss, email);
      assert.equal(grants[0].aud, GOOGLE_TOKEN_URL);
      for (const request of cloudRun.requests) assert.equal(request.headers.authorization, `Bearer ${lastToken}`);

      assert.deepEqual(await transport.call({ text: 'chef' }), { label: 'CHEF' });
      assert.equal(grants.length, 1, 'still the same token for the next call');
    });

    it('fails at once, without retrying, when there are no usable credentials', async () => {
      const before = cloudRun.requests.length;
      const transport = new HttpTransport({
        functionName: 'classify',
        endpoints: [cloudRun.url],
        headers: googleIdTokenHeaders({ functionName: 'classify', authOptions: { keyFile: path.join(dir, 'missing.json') } }),
        timeoutMs: 20_000,
      });
      const started = Date.now();
      await assert.rejects(transport.call({ text: 'nurse' }), (error: unknown) => {
        assert.ok(isRemoteError(error));
        assert.equal(error.type, 'BadRequest');
        assert.match(error.message, /cannot get a Google ID token for http:\/\/127\.0\.0\.1:\d+: .*missing\.json/);
        return true;
      });
      assert.ok(Date.now() - started < 5_000);
      assert.equal(cloudRun.requests.length, before, 'nothing was sent without a token');
    });
  });
});

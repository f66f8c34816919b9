/**
 * Child process behind integration/s3rver.ts: runs s3rver (a real S3-protocol server, files on disk) on
 * 127.0.0.1, port 0, and prints `{"port":N}` once listening. Started with `--openssl-legacy-provider`,
 * which s3rver's ListObjectsV2 continuation tokens need (they are DES-encrypted; Node 20's OpenSSL 3
 * keeps DES in the legacy provider), so paged listings work as they do on S3.
 *
 * Requests and their bodies' declared lengths are counted in front of s3rver; `GET /__sgpu/stats` answers the counts
 * (`{ requests, bodyBytes, byMethod, ranged }`), `POST /__sgpu/stats` resets them. Ends on SIGTERM or when
 * its stdin closes (the parent exited), removing DIR.
 *
 *   node --openssl-legacy-provider s3rver-main.js DIR BUCKET...
 */
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import S3rver from 's3rver';

interface Stats {
  requests: number;
  bodyBytes: number;
  byMethod: Record<string, number>;
  ranged: number;
}

async function main(): Promise<void> {
  const [directory, ...buckets] = process.argv.slice(2);
  const s3rver = new S3rver({ directory, silent: true, configureBuckets: buckets.map((name) => ({ name, configs: [] })) });
  await s3rver.configureBuckets();
  const handle = s3rver.callback();
  let stats: Stats = { requests: 0, bodyBytes: 0, byMethod: {}, ranged: 0 };
  const server = http.createServer((request, response) => {
    if (request.url === '/__sgpu/stats') {
      if (request.method === 'POST') stats = { requests: 0, bodyBytes: 0, byMethod: {}, ranged: 0 };
      response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(stats));
      return;
    }
    stats.requests += 1;
    stats.byMethod[request.method ?? '?'] = (stats.byMethod[request.method ?? '?'] ?? 0) + 1;
    if (request.headers.range) stats.ranged += 1;
    // The declared length (every upload here declares one): listening to 'data' would steal the body from s3rver.
    stats.bodyBytes += Number(request.headers['content-length'] ?? 0);
    handle(request, response);
  });
  // Big uploads at full loopback speed: no per-request timeout.
  server.requestTimeout = 0;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  process.stdout.write(`${JSON.stringify({ port: (server.address() as AddressInfo).port })}\n`);
  const stop = (): void => {
    server.closeAllConnections();
    server.close(() => {
      fs.rmSync(directory, { recursive: true, force: true });
      process.exit(0);
    });
  };
  process.on('SIGTERM', stop);
  // The parent holds our stdin: when it dies, however it dies, so do we.
  process.stdin.on('end', stop).resume();
}

main().catch((error: unknown) => {
  process.stderr.write(`s3rver-main: ${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});

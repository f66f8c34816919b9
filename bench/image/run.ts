/**
 * bench/image: a code-only redeploy, through the product vs. the usual path, measured in one run.
 *
 *   product: the code layer appended over the registry API (HEAD, upload what is missing, PUT manifest);
 *            timed for the image step alone and for a whole `sls package` (CLI start and bundling included).
 *   usual:   `buildah bud` of a Containerfile that COPYs the same bundle onto the same, already built and
 *            cached, environment image, then `buildah push`.
 *
 * Everything is real and local: docker-registry on 127.0.0.1, buildah (vfs storage, chroot isolation).
 * Bytes uploaded are read from the registry's access log (completed blob uploads) and the blobs' sizes.
 * BENCH_ROUNDS (default 3) code changes are measured for each path.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CLIS, ROOT, copyService, run } from '../../integration/helpers';
import { buildNodeBase, startRegistry, type TestRegistry } from '../../integration/registry';
import { RegistryClient } from '../../providers/registry/client';
import { pushCodeImage } from '../../plugin/image/code-image';
import type { FunctionSpec } from '../../plugin/spec';

interface Sample {
  readonly seconds: number;
  readonly bytes: number;
  readonly blobs: number;
}

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);

async function uploadedSince(registry: TestRegistry, mark: number, repository: string): Promise<{ blobs: number; bytes: number }> {
  await registry.sync();
  const digests = registry
    .requests()
    .slice(mark)
    .filter((r) => r.method === 'PUT' && r.path.includes('/blobs/uploads/') && r.status === 201)
    .map((r) => decodeURIComponent(/[?&]digest=([^&]+)/.exec(r.path)?.[1] ?? ''));
  let bytes = 0;
  for (const digest of digests) {
    const head = await fetch(`http://${registry.host}/v2/${repository}/blobs/${digest}`, { method: 'HEAD' });
    bytes += Number(head.headers.get('content-length') ?? 0);
  }
  return { blobs: digests.length, bytes };
}

function sh(command: string, args: readonly string[]): void {
  const result = spawnSync(command, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (result.status !== 0) throw new Error(`${command} ${args.join(' ')}: ${result.stderr}`);
}

const mean = (samples: readonly Sample[], key: keyof Sample): number => samples.reduce((sum, s) => sum + s[key], 0) / samples.length;
const fmtBytes = (bytes: number): string => (bytes > 1024 * 1024 ? `${(bytes / 1024 / 1024).toFixed(1)} MB` : `${(bytes / 1024).toFixed(1)} kB`);

async function main(): Promise<void> {
  const registry = await startRegistry();
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'sgpu-bench-image-'));
  try {
    const base = buildNodeBase(registry.host);
    const dir = copyService(path.join(ROOT, 'integration', 'fixtures', 'imaged'), 'bench-imaged');
    const env = { SGPU_TEST_REGISTRY: `${registry.host}/acme`, SGPU_TEST_BASE: base, SGPU_TEST_LOUD: 'yes' };
    const first = await run(process.execPath, [CLIS.osls, 'package'], dir, 600_000, env);
    if (first.code !== 0) throw new Error(first.output);
    const images = JSON.parse(fs.readFileSync(path.join(dir, '.serverless', 'gpu', 'images.json'), 'utf8')) as Record<string, { environmentTag: string }>;
    const specs = JSON.parse(fs.readFileSync(path.join(dir, '.serverless', 'gpu', 'specs.json'), 'utf8')) as Array<{ spec: FunctionSpec }>;
    const spec = specs.find((s) => s.spec.name === 'greet')!.spec;
    const envTag = images.greet.environmentTag;
    const envRef = `${registry.host}/acme/imaged:${envTag}`;
    const artifactDir = path.join(dir, '.serverless', 'gpu', 'greet');
    // The usual path's environment is cached in buildah's local storage, as on a CI runner that built it before.
    sh('buildah', ['--storage-driver', 'vfs', 'pull', '--tls-verify=false', envRef]);

    const product: Sample[] = [];
    const productCli: Sample[] = [];
    const usual: Sample[] = [];
    for (let round = 1; round <= ROUNDS; round += 1) {
      fs.writeFileSync(path.join(dir, 'src', 'suffix.ts'), `export const suffix = ' (round ${round}, ${Date.now()})';\n`);

      // Product, whole CLI: `sls package` after a code-only change.
      await registry.sync();
      let mark = registry.requests().length;
      let started = process.hrtime.bigint();
      const packaged = await run(process.execPath, [CLIS.osls, 'package'], dir, 600_000, env);
      if (packaged.code !== 0) throw new Error(packaged.output);
      let seconds = Number(process.hrtime.bigint() - started) / 1e9;
      productCli.push({ seconds, ...(await uploadedSince(registry, mark, 'acme/imaged')) });

      // The bundle this round produced, moved by each path into its own repository.
      const bundleDir = path.join(work, `round-${round}`);
      fs.cpSync(artifactDir, path.join(bundleDir, 'app'), { recursive: true });
      fs.appendFileSync(path.join(bundleDir, 'app', 'bundle.js'), `\n// bench round ${round}\n`);

      // Product, image step alone: append the code layer over the registry API.
      await registry.sync();
      mark = registry.requests().length;
      started = process.hrtime.bigint();
      // The layer cache the product keeps under .serverless/gpu/_layers (the shim's layer is reused).
      await pushCodeImage({ client: new RegistryClient(registry.host), repository: 'acme/imaged', environmentTag: envTag, artifactDir: path.join(bundleDir, 'app'), spec, cacheDir: path.join(dir, '.serverless', 'gpu', '_layers') });
      seconds = Number(process.hrtime.bigint() - started) / 1e9;
      product.push({ seconds, ...(await uploadedSince(registry, mark, 'acme/imaged')) });

      // Usual: buildah bud (COPY onto the cached environment) + buildah push.
      fs.writeFileSync(
        path.join(bundleDir, 'Containerfile'),
        `FROM ${envRef}\nCOPY app/ /app/\nWORKDIR /app\nENTRYPOINT ["node", "/app/shim.js", "/app/manifest.json"]\n`,
      );
      const ref = `${registry.host}/acme/imaged-usual:round-${round}`;
      await registry.sync();
      mark = registry.requests().length;
      started = process.hrtime.bigint();
      sh('buildah', ['--storage-driver', 'vfs', 'bud', '--isolation', 'chroot', '--pull=never', '-f', path.join(bundleDir, 'Containerfile'), '-t', ref, bundleDir]);
      sh('buildah', ['--storage-driver', 'vfs', 'push', '--tls-verify=false', ref, `docker://${ref}`]);
      seconds = Number(process.hrtime.bigint() - started) / 1e9;
      usual.push({ seconds, ...(await uploadedSince(registry, mark, 'acme/imaged-usual')) });
      console.log(
        `round ${round}: product ${product[round - 1].seconds.toFixed(3)} s (sls package ${productCli[round - 1].seconds.toFixed(2)} s), usual ${usual[round - 1].seconds.toFixed(2)} s`,
      );
    }
    const rows: Array<[string, Sample[]]> = [
      ['product: code layer over the registry API', product],
      ['product: whole `sls package` (CLI, bundle, push)', productCli],
      ['usual: buildah bud COPY + buildah push', usual],
    ];
    console.log(`\ncode-only redeploy, mean of ${ROUNDS} round(s):`);
    for (const [name, samples] of rows) {
      console.log(`  ${name.padEnd(52)} ${mean(samples, 'seconds').toFixed(3).padStart(8)} s  ${fmtBytes(mean(samples, 'bytes')).padStart(10)} uploaded in ${mean(samples, 'blobs').toFixed(1)} blob(s)`);
    }
    console.log(`\nusual / product (image step): ${(mean(usual, 'seconds') / mean(product, 'seconds')).toFixed(1)}x faster  (target >= 10x)`);
    console.log(`usual / product (whole sls package): ${(mean(usual, 'seconds') / mean(productCli, 'seconds')).toFixed(1)}x faster`);
    console.log(`bytes uploaded, usual / product: ${(mean(usual, 'bytes') / Math.max(1, mean(product, 'bytes'))).toFixed(2)}x`);
    fs.rmSync(dir, { recursive: true, force: true });
  } finally {
    await registry.stop();
    fs.rmSync(work, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});

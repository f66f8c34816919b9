/**
 * `sls gpu eject --out DIR`: the service's program as a standalone Pulumi TypeScript project an infra
 * team can review, version and `pulumi up` themselves. It declares the same components, with the same
 * names, from the same specs as `sls deploy` (providers/program.ts) — the test suite checks that both
 * register the same resources — and compiles with `tsc --strict` against the real @pulumi packages.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { FunctionSpec } from './spec';
import { artifactRegistryOf, type ProgramInput } from '../providers/program';
import { resourceName } from '../providers/pulumi/args';

const PULUMI_VERSIONS = {
  '@pulumi/pulumi': '3.248.0',
  '@pulumi/gcp': '9.37.0',
  '@pulumi/aws': '7.48.0',
  '@pulumi/kubernetes': '4.34.2',
} as const;

const json = (value: unknown): string => JSON.stringify(value);

/** A spec as it goes into the project: the handler's path made relative, nothing of this machine. */
function portableSpec(spec: FunctionSpec): FunctionSpec {
  return { ...spec, file: spec.relFile };
}

function identifier(name: string): string {
  const camel = name.replace(/[^A-Za-z0-9]+(.)/g, (_, c: string) => c.toUpperCase());
  return /^[A-Za-z_$]/.test(camel) ? camel : `fn${camel}`;
}

export function renderSpecs(input: ProgramInput): string {
  const lines = [
    `// Function specs of ${input.service} (stage ${input.stage}) as serverless-gpu resolved them.`,
    `import type { FunctionSpec } from 'serverless-gpu/pulumi';`,
    '',
    `export const specs: Record<string, FunctionSpec> = ${JSON.stringify(Object.fromEntries(input.functions.map((f) => [f.spec.name, portableSpec(f.spec)])), null, 2)};`,
    '',
  ];
  return lines.join('\n');
}

export function renderIndex(input: ProgramInput): string {
  const has = (target: string): boolean => input.functions.some((f) => f.spec.target === target);
  const imports = new Set<string>();
  const body: string[] = [];
  const exports: string[] = [];
  const stackName = resourceName([input.service, input.stage]);
  const ar = artifactRegistryOf(input.registry);
  if ((has('cloudrun') || has('gke')) && ar) {
    imports.add('ArtifactRegistry');
    body.push(`new ArtifactRegistry(${json(resourceName([input.service, 'images']))}, ${json(ar)});`, '');
  }
  if (has('cloudrun') || has('gke')) {
    imports.add('PayloadBucket');
    body.push(
      `/** Large inputs and outputs of the Google Cloud functions travel through this bucket. */`,
      `const payloads = new PayloadBucket(${json(resourceName([input.service, input.stage, 'payloads']))}, { project: ${json(input.gcp?.project)}, region: ${json(input.gcp?.region)} });`,
      '',
    );
  }
  for (const { spec, image } of input.functions.filter((f) => f.spec.target === 'cloudrun')) {
    imports.add('CloudRunFunction');
    const id = identifier(spec.name);
    body.push(
      `const ${id} = new CloudRunFunction(${json(spec.name)}, {`,
      `  spec: specs[${json(spec.name)}],`,
      `  image: ${json(image)},`,
      `  project: ${json(input.gcp?.project)},`,
      `  region: ${json(input.gcp?.region)},`,
      ...(input.weightsBucket ? [`  weightsBucket: ${json(input.weightsBucket)},`] : []),
      ...(input.gcp?.gpuZonalRedundancyDisabled !== undefined ? [`  gpuZonalRedundancyDisabled: ${json(input.gcp.gpuZonalRedundancyDisabled)},`] : []),
      `  payloadBucket: payloads.bucketName,`,
      `});`,
      '',
    );
    exports.push(
      `  ${json(spec.name)}: { target: 'cloudrun', url: ${id}.url, serviceName: ${id}.serviceName, region: ${json(input.gcp?.region)}, project: ${json(input.gcp?.project)}, payloadStore: ${id}.payloadStore },`,
    );
  }
  if (has('gke')) {
    imports.add('GkeCluster').add('GkeFunction');
    body.push(
      `const cluster = new GkeCluster(${json(stackName)}, {`,
      `  project: ${json(input.gcp?.project)},`,
      `  region: ${json(input.gcp?.region)},`,
      `  create: ${json(input.gke?.createCluster ?? false)},`,
      ...(input.gke?.cluster ? [`  name: ${json(input.gke.cluster)},`] : []),
      ...(input.gke?.location ? [`  location: ${json(input.gke.location)},`] : []),
      `});`,
      `const namespace = new k8s.core.v1.Namespace(`,
      `  ${json(resourceName([input.service, input.stage, 'ns']))},`,
      `  { metadata: { name: ${json(input.gke?.namespace ?? stackName)}, labels: { 'managed-by': 'serverless-gpu' } } },`,
      `  { provider: cluster.provider },`,
      `);`,
      '',
    );
    for (const { spec, image } of input.functions.filter((f) => f.spec.target === 'gke')) {
      const id = identifier(spec.name);
      body.push(
        `const ${id} = new GkeFunction(${json(spec.name)}, {`,
        `  spec: specs[${json(spec.name)}],`,
        `  image: ${json(image)},`,
        `  cluster,`,
        `  namespace: namespace.metadata.name,`,
        ...(input.weightsBucket ? [`  weightsBucket: ${json(input.weightsBucket)},`] : []),
        `  payloadBucket: payloads.bucketName,`,
        `});`,
        '',
      );
      exports.push(
        `  ${json(spec.name)}: { target: 'gke', address: ${id}.address, serviceName: ${id}.serviceName, namespace: ${id}.namespace${input.gke?.gateway ? `, gateway: ${json(input.gke.gateway)}` : ''}, payloadStore: ${id}.payloadStore },`,
      );
    }
  }
  if (has('batch')) {
    imports.add('BatchEnvironment').add('BatchFunction').add('jobInstanceTypes');
    const batchFns = input.functions.filter((f) => f.spec.target === 'batch');
    const aws = input.aws ?? {};
    body.push(
      `const batch = new BatchEnvironment(${json(stackName)}, {`,
      `  service: ${json(input.service)},`,
      `  stage: ${json(input.stage)},`,
      `  instanceTypes: [...new Set([${batchFns.map((f) => `specs[${json(f.spec.name)}]`).join(', ')}].flatMap(jobInstanceTypes))],`,
      ...(aws.maxVcpus !== undefined ? [`  maxVcpus: ${json(aws.maxVcpus)},`] : []),
      ...(aws.spot !== undefined ? [`  spot: ${json(aws.spot)},`] : []),
      ...(aws.subnets ? [`  subnets: ${json(aws.subnets)},`] : []),
      ...(aws.securityGroups ? [`  securityGroups: ${json(aws.securityGroups)},`] : []),
      ...(aws.callBucket ? [`  callBucket: ${json(aws.callBucket)},`] : []),
      `});`,
      '',
    );
    for (const { spec, image } of batchFns) {
      const id = identifier(spec.name);
      body.push(
        `const ${id} = new BatchFunction(${json(spec.name)}, {`,
        `  spec: specs[${json(spec.name)}],`,
        `  image: ${json(image)},`,
        `  environment: batch,`,
        `  region: ${json(aws.region)},`,
        ...(input.weightsBucket ? [`  weightsBucket: ${json(input.weightsBucket)},`] : []),
        `});`,
        '',
      );
      exports.push(
        `  ${json(spec.name)}: { target: 'batch', jobQueueArn: ${id}.jobQueueArn, jobDefinitionArn: ${id}.jobDefinitionArn, callBucket: ${id}.callBucket, callPrefix: ${id}.callPrefix, region: ${json(aws.region)} },`,
      );
    }
  }
  return [
    `// Pulumi program of ${input.service} (stage ${input.stage}), ejected by serverless-gpu.`,
    `// It declares what \`sls deploy\` declares; review it, version it and run \`pulumi up\` yourself.`,
    ...(has('gke') ? [`import * as k8s from '@pulumi/kubernetes';`] : []),
    `import { ${[...imports].sort().join(', ')} } from 'serverless-gpu/pulumi';`,
    `import { specs } from './specs';`,
    '',
    ...body,
    `/** What callers need per function; the serverless-gpu client reads the same outputs. */`,
    `export const functions = {`,
    ...exports,
    `};`,
    '',
  ].join('\n');
}

export function ejectProject(input: ProgramInput, pulumiConfig: Record<string, string>, outDir: string): string[] {
  const used = new Set(input.functions.map((f) => f.spec.target));
  const dependencies: Record<string, string> = { '@pulumi/pulumi': PULUMI_VERSIONS['@pulumi/pulumi'], 'serverless-gpu': '^0.1.0' };
  if (used.has('cloudrun') || used.has('gke')) dependencies['@pulumi/gcp'] = PULUMI_VERSIONS['@pulumi/gcp'];
  if (used.has('gke')) dependencies['@pulumi/kubernetes'] = PULUMI_VERSIONS['@pulumi/kubernetes'];
  if (used.has('batch')) dependencies['@pulumi/aws'] = PULUMI_VERSIONS['@pulumi/aws'];
  const files: Record<string, string> = {
    'Pulumi.yaml': [`name: ${input.service}`, `description: serverless-gpu service ${input.service}, ejected`, `runtime: nodejs`, `main: index.ts`, ''].join('\n'),
    [`Pulumi.${input.stage}.yaml`]: ['config:', ...Object.entries(pulumiConfig).map(([key, value]) => `  ${key}: ${json(value)}`), ''].join('\n'),
    'package.json': `${JSON.stringify({ name: `${input.service}-infra`, private: true, main: 'index.ts', dependencies, devDependencies: { typescript: '^5.9.0', '@types/node': '^20.0.0' } }, null, 2)}\n`,
    'tsconfig.json': `${JSON.stringify({ compilerOptions: { strict: true, target: 'ES2022', module: 'node16', moduleResolution: 'node16', esModuleInterop: true, skipLibCheck: true, outDir: 'bin' }, files: ['index.ts', 'specs.ts'] }, null, 2)}\n`,
    'index.ts': renderIndex(input),
    'specs.ts': renderSpecs(input),
  };
  fs.mkdirSync(outDir, { recursive: true });
  return Object.entries(files).map(([name, content]) => {
    const file = path.join(outDir, name);
    fs.writeFileSync(file, content);
    return file;
  });
}

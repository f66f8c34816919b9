/**
 * Runs Pulumi programs without the CLI: `pulumi.runtime.setMocks` with a mock that records every
 * resource and fabricates the outputs later code reads (names, emails, URLs, ARNs). Used by the
 * components' tests and by `sls gpu plan`.
 */
import * as pulumi from '@pulumi/pulumi';
import { getMonitor } from '@pulumi/pulumi/runtime/settings';

export interface RegisteredResource {
  readonly type: string;
  readonly name: string;
  readonly inputs: Record<string, unknown>;
  /** URN of the parent, when there is one. */
  readonly parent?: string;
  /** Its own URN (the type qualified by the parent's, as Pulumi builds it). */
  readonly urn: string;
}

export interface PulumiMock {
  /** Every resource registered since `reset()`, in order. */
  readonly resources: RegisteredResource[];
  reset(): void;
  /** Resources of one type token, e.g. `gcp:cloudrunv2/service:Service`. */
  ofType(type: string): RegisteredResource[];
}

const PROJECT_NUMBER = '123456789012';

/** Outputs a real provider would compute, so code reading them has values. */
function fabricate(type: string, name: string, inputs: Record<string, unknown>, config: Record<string, string>): Record<string, unknown> {
  const state: Record<string, unknown> = { ...inputs, name: inputs.name ?? name };
  const project = config['gcp:project'] ?? 'mock-project';
  const region = config['aws:region'] ?? 'us-east-1';
  switch (type) {
    case 'gcp:cloudrunv2/service:Service':
      state.uri = `https://${String(state.name)}-mock-uc.a.run.app`;
      state.project = inputs.project ?? project;
      break;
    case 'gcp:serviceaccount/account:Account':
      state.email = `${String(inputs.accountId)}@${project}.iam.gserviceaccount.com`;
      state.member = `serviceAccount:${String(state.email)}`;
      break;
    case 'gcp:artifactregistry/repository:Repository':
      state.registryUri = `${String(inputs.location)}-docker.pkg.dev/${project}/${String(inputs.repositoryId)}`;
      break;
    case 'gcp:container/cluster:Cluster':
      state.endpoint = '203.0.113.10';
      state.masterAuth = { clusterCaCertificate: Buffer.from('mock-ca').toString('base64') };
      break;
    case 'aws:ecr/repository:Repository':
      state.repositoryUrl = `${PROJECT_NUMBER}.dkr.ecr.${region}.amazonaws.com/${String(state.name)}`;
      break;
    case 'aws:s3/bucket:Bucket':
      state.bucket = inputs.bucket ?? `${name}-mock`;
      break;
    default:
      break;
  }
  if (type.startsWith('aws:')) state.arn = state.arn ?? `arn:aws:mock:${region}:${PROJECT_NUMBER}:${name}`;
  return state;
}

function invoke(token: string, inputs: Record<string, unknown>, config: Record<string, string>): Record<string, unknown> {
  switch (token) {
    case 'aws:ec2/getVpc:getVpc':
      return { id: 'vpc-mock', arn: 'arn:aws:ec2:mock:vpc/vpc-mock' };
    case 'aws:ec2/getSubnets:getSubnets':
      return { id: 'subnets', ids: ['subnet-mock-a', 'subnet-mock-b'] };
    case 'aws:index/getCallerIdentity:getCallerIdentity':
      return { accountId: PROJECT_NUMBER, arn: `arn:aws:iam::${PROJECT_NUMBER}:root`, userId: 'mock' };
    case 'gcp:organizations/getProject:getProject':
      return { number: PROJECT_NUMBER, projectId: config['gcp:project'] ?? 'mock-project' };
    case 'gcp:container/getCluster:getCluster':
      return { ...inputs, endpoint: '203.0.113.20', masterAuths: [{ clusterCaCertificate: Buffer.from('mock-ca').toString('base64') }] };
    default:
      return inputs;
  }
}

/**
 * Installs the mocks (call before constructing resources). `config` is Pulumi config, e.g.
 * `{ 'gcp:project': 'acme', 'aws:region': 'us-east-1' }`.
 */
export async function mockPulumi(config: Record<string, string> = {}, project = 'serverless-gpu', stack = 'test'): Promise<PulumiMock> {
  const resources: RegisteredResource[] = [];
  // The mock API does not pass a resource's parent; the monitor's request has it, and the monitor
  // calls `newResource` synchronously, so the parent is read off the request just before.
  let parent: string | undefined;
  const urnOf = (type: string, name: string, parentUrn: string | undefined): string => {
    const qualified = parentUrn ? `${parentUrn.split('::')[2].split('$').pop()}$${type}` : type;
    return `urn:pulumi:${stack}::${project}::${qualified}::${name}`;
  };
  pulumi.runtime.setAllConfig(config);
  await pulumi.runtime.setMocks(
    {
      newResource(args: pulumi.runtime.MockResourceArgs) {
        const inputs = (args.inputs ?? {}) as Record<string, unknown>;
        const parentUrn = parent || undefined;
        resources.push({ type: args.type, name: args.name, inputs, parent: parentUrn, urn: urnOf(args.type, args.name, parentUrn) });
        return { id: `${args.name}-id`, state: fabricate(args.type, args.name, inputs, config) };
      },
      call(args: pulumi.runtime.MockCallArgs) {
        return invoke(args.token, (args.inputs ?? {}) as Record<string, unknown>, config);
      },
    },
    project,
    stack,
    false,
  );
  const monitor = getMonitor() as unknown as { registerResource(req: { getParent(): string }, callback: unknown): Promise<void> };
  const register = monitor.registerResource.bind(monitor);
  monitor.registerResource = (req, callback) => {
    parent = req.getParent();
    return register(req, callback);
  };
  return {
    resources,
    reset: () => resources.splice(0),
    ofType: (type) => resources.filter((r) => r.type === type),
  };
}

/** The value of an Output (resolved under mocks). */
export function valueOf<T>(output: pulumi.Input<T> | pulumi.Output<T>): Promise<T> {
  return new Promise((resolve) => pulumi.output(output).apply((value) => {
    resolve(value as T);
    return value;
  }));
}

/** Waits until every resource registered so far has been seen by the mock. */
export async function settle(): Promise<void> {
  for (let i = 0; i < 5; i += 1) await new Promise((resolve) => setImmediate(resolve));
  await new Promise((resolve) => setTimeout(resolve, 20));
}

/** The resources a component named `name` made: itself and the children named `<name>-...`. */
export function ownedBy(name: string): (r: RegisteredResource) => boolean {
  return (r) => r.name === name || r.name.startsWith(`${name}-`);
}

/** Lookups over recorded resources: every input of a type, or the one resource of a type (asserted). */
export function selectors(resources: readonly RegisteredResource[]): {
  all(type: string): any[]; // eslint-disable-line @typescript-eslint/no-explicit-any -- recorded inputs are plain JSON
  one(type: string): any; // eslint-disable-line @typescript-eslint/no-explicit-any
} {
  const all = (type: string) => resources.filter((r) => r.type === type).map((r) => r.inputs as Record<string, unknown>);
  return {
    all,
    one: (type) => {
      const found = all(type);
      if (found.length !== 1) throw new Error(`expected one ${type}, got ${found.length}`);
      return found[0];
    },
  };
}

/** The error a constructor threw; fails when it did not throw. */
export function constructorError(construct: () => unknown): Error {
  try {
    construct();
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected the constructor to throw');
}

/**
 * `sls gpu plan`: runs the service's program under Pulumi's mocks — offline, no Pulumi CLI, no cloud —
 * and reports every resource it declares with its key inputs, and the hourly cost floor of what it
 * keeps warm. This is what the program declares, not a diff against what exists in the cloud.
 */
import type { ProgramInput } from '../providers/program';
import { costFloor, PRICE_SOURCE, type CostLine } from './prices';

export interface PlannedResource {
  readonly type: string;
  readonly name: string;
  /** Name of the parent resource (a component), or null at the top. */
  readonly parent: string | null;
  readonly inputs: Record<string, unknown>;
}

/** A planned resource with the URNs that place it in the tree (names repeat across types). */
interface PlacedResource extends PlannedResource {
  readonly urn: string;
  readonly parentUrn: string | null;
}

export interface Plan {
  readonly resources: PlacedResource[];
  readonly costFloorPerHour: number;
  readonly costLines: CostLine[];
}

export async function planProgram(input: ProgramInput, config: Record<string, string>): Promise<Plan> {
  const [{ mockPulumi, settle }, { declareService }] = await Promise.all([import('../providers/pulumi/testing'), import('../providers/program')]);
  const mock = await mockPulumi(config, input.service, input.stage);
  await declareService(input);
  await settle();
  const nameOf = new Map(mock.resources.map((r) => [r.urn, r.name]));
  const floor = costFloor(input.functions.map((f) => f.spec));
  return {
    resources: mock.resources.map((r) => ({
      type: r.type,
      name: r.name,
      parent: r.parent ? (nameOf.get(r.parent) ?? r.parent) : null,
      inputs: r.inputs,
      urn: r.urn,
      parentUrn: r.parent ?? null,
    })),
    costFloorPerHour: floor.total,
    costLines: floor.lines,
  };
}

type Json = Record<string, unknown>;
const at = (value: unknown, ...keys: Array<string | number>): unknown =>
  keys.reduce<unknown>((v, k) => (v === null || v === undefined ? undefined : (v as Json)[k as string]), value);

function brief(value: unknown): string {
  return typeof value === 'string' ? value : JSON.stringify(value);
}

/** The inputs a reviewer looks at first, per resource type; anything else shows its scalar inputs. */
export function keyInputs(resource: PlannedResource): Array<[string, unknown]> {
  const i = resource.inputs;
  switch (resource.type) {
    case 'gcp:cloudrunv2/service:Service': {
      const container = at(i, 'template', 'containers', 0);
      return [
        ['gpu', at(i, 'template', 'nodeSelector', 'accelerator')],
        ['limits', at(container, 'resources', 'limits')],
        ['scaling', at(i, 'template', 'scaling')],
        ['concurrency', at(i, 'template', 'maxInstanceRequestConcurrency')],
        ['timeout', at(i, 'template', 'timeout')],
        ['image', at(container, 'image')],
        ['mounts', at(i, 'template', 'volumes')],
        ['serviceAccount', at(i, 'template', 'serviceAccount')],
      ];
    }
    case 'kubernetes:apps/v1:Deployment': {
      const spec = at(i, 'spec', 'template', 'spec');
      return [
        ['gpu', at(spec, 'nodeSelector')],
        ['resources', at(spec, 'containers', 0, 'resources')],
        ['replicas', at(i, 'spec', 'replicas')],
        ['image', at(spec, 'containers', 0, 'image')],
        ['mounts', at(spec, 'volumes')],
      ];
    }
    case 'kubernetes:autoscaling/v2:HorizontalPodAutoscaler':
      return [
        ['min', at(i, 'spec', 'minReplicas')],
        ['max', at(i, 'spec', 'maxReplicas')],
      ];
    case 'aws:batch/jobDefinition:JobDefinition': {
      const container = typeof i.containerProperties === 'string' ? (JSON.parse(i.containerProperties) as Json) : {};
      return [
        ['resources', container.resourceRequirements],
        ['image', container.image],
        ['retry', i.retryStrategy],
        ['timeout', i.timeout],
      ];
    }
    case 'aws:batch/computeEnvironment:ComputeEnvironment':
      return [
        ['instances', at(i, 'computeResources', 'instanceTypes')],
        ['type', at(i, 'computeResources', 'type')],
        ['maxVcpus', at(i, 'computeResources', 'maxVcpus')],
        ['ami', at(i, 'computeResources', 'ec2Configurations')],
      ];
    default: {
      const iam = ['role', 'member', 'bucket', 'secretId', 'policyArn'].filter((k) => i[k] !== undefined);
      if (iam.length > 0) return iam.map((k) => [k, i[k]]);
      return Object.entries(i)
        .filter(([, v]) => v !== null && typeof v !== 'object')
        .slice(0, 4);
    }
  }
}

export function renderPlan(plan: Plan, service: string, stage: string): string {
  const lines = [
    `Plan for ${service} (stage ${stage}): what the program declares, run offline under Pulumi's mocks.`,
    `This is not a diff against the cloud: \`sls deploy\` runs \`pulumi up\` for that.`,
    '',
  ];
  const children = new Map<string | null, PlacedResource[]>();
  for (const r of plan.resources) children.set(r.parentUrn, [...(children.get(r.parentUrn) ?? []), r]);
  const walk = (parent: string | null, depth: number): void => {
    for (const r of children.get(parent) ?? []) {
      lines.push(`${'  '.repeat(depth)}+ ${r.type}  ${r.name}`);
      for (const [key, value] of keyInputs(r)) {
        if (value !== undefined) lines.push(`${'  '.repeat(depth + 2)}${key}: ${brief(value)}`);
      }
      walk(r.urn, depth + 1);
    }
  };
  walk(null, 0);
  lines.push('', `${plan.resources.length} resources.`);
  if (plan.costLines.length === 0) {
    lines.push('Cost floor: 0 USD/hour (nothing kept warm).');
  } else {
    for (const line of plan.costLines) {
      lines.push(`Cost floor: ${line.function} keeps ${line.instances} × ${line.gpu} on ${line.target}: ${line.perHour === undefined ? 'price unknown' : `${line.perHour.toFixed(2)} USD/hour`}`);
    }
    lines.push(`Cost floor total: ${plan.costFloorPerHour.toFixed(2)} USD/hour (${PRICE_SOURCE}).`);
  }
  return lines.join('\n');
}

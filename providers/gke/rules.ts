/**
 * What GKE Autopilot can run, as a pure check: the plugin calls it at `sls package` (no Pulumi loaded),
 * the component again before it creates anything.
 */
import { GKE_ACCELERATORS, gpuTypesOf } from '../../plugin/catalogue';
import type { FunctionSpec } from '../../plugin/spec';

/** What GKE cannot run in a spec, each naming its field. Pure: the component throws these. */
export function gkeProblems(spec: FunctionSpec): string[] {
  const problems: string[] = [];
  if (spec.gpu && !GKE_ACCELERATORS[spec.gpu.type]) {
    problems.push(`gpu.type "${spec.gpu.type}" is not offered on GKE Autopilot; use one of ${gpuTypesOf('gke').join(', ')}`);
  }
  if (spec.gpu && !(spec.gpu.count >= 1)) problems.push(`gpu.count must be at least 1, got ${spec.gpu.count}`);
  if (spec.maxInstances < 1) problems.push(`maxInstances must be at least 1 on GKE (an HPA keeps one pod), got ${spec.maxInstances}`);
  return problems;
}

/**
 * Impossible combinations, caught at `sls package` (and plan, eject) before anything touches a cloud:
 * what each target cannot run (providers/<target>/rules.ts) and the service-wide settings it needs.
 */
import type { ServiceConfig } from './config';
import { ConfigError } from './errors';
import type { FunctionSpec } from './spec';
import { cloudRunProblems } from '../providers/cloudrun/rules';
import { gkeProblems } from '../providers/gke/rules';
import { batchProblems } from '../providers/batch/rules';

const PROBLEMS: Record<'cloudrun' | 'gke' | 'batch', (spec: FunctionSpec) => string[]> = {
  cloudrun: cloudRunProblems,
  gke: gkeProblems,
  batch: batchProblems,
};

const NAMES = { cloudrun: 'Cloud Run', gke: 'GKE Autopilot', batch: 'AWS Batch' } as const;

/** Problems of the service-wide settings the specs' targets need, each naming its serverless.yml path. */
export function settingProblems(config: ServiceConfig, specs: readonly FunctionSpec[]): Array<{ path: string; message: string }> {
  const problems: Array<{ path: string; message: string }> = [];
  const uses = (target: FunctionSpec['target']): FunctionSpec[] => specs.filter((s) => s.target === target);
  const names = (list: readonly FunctionSpec[]): string => list.map((s) => s.name).join(', ');
  const google = [...uses('cloudrun'), ...uses('gke')];
  if (google.length > 0) {
    if (!config.provider.gcp?.project) problems.push({ path: 'provider.gcp.project', message: `is required for ${names(google)} (on Google Cloud)` });
    if (!config.provider.gcp?.region) problems.push({ path: 'provider.gcp.region', message: `is required for ${names(google)} (on Google Cloud)` });
  }
  if (uses('gke').length > 0 && !config.provider.gke?.cluster && !config.provider.gke?.createCluster) {
    problems.push({ path: 'provider.gke', message: `${names(uses('gke'))} run on GKE: name an existing Autopilot cluster (cluster: NAME) or set createCluster: true` });
  }
  if (uses('batch').length > 0 && !config.provider.aws?.region) {
    problems.push({ path: 'provider.aws.region', message: `is required for ${names(uses('batch'))} (on AWS Batch)` });
  }
  const weighted = specs.filter((s) => s.target !== 'local' && s.weights);
  if (weighted.length > 0 && !config.provider.weights?.bucket) {
    problems.push({ path: 'provider.weights.bucket', message: `is required: ${names(weighted)} read weights from a bucket` });
  }
  return problems;
}

/** Throws one ConfigError listing every problem, each with its path. */
export function checkTargets(config: ServiceConfig, specs: readonly FunctionSpec[]): void {
  const lines = settingProblems(config, specs).map((p) => `${p.path} ${p.message}`);
  for (const spec of specs) {
    if (spec.target === 'local') continue;
    for (const problem of PROBLEMS[spec.target](spec)) lines.push(`functions.${spec.name}: ${problem} (target ${NAMES[spec.target]})`);
  }
  if (lines.length === 1) throw new ConfigError(lines[0].split(' ')[0].replace(/:$/, ''), lines[0].slice(lines[0].indexOf(' ') + 1));
  if (lines.length > 1) throw new ConfigError('serverless.yml', `these functions cannot be deployed as configured:\n  - ${lines.join('\n  - ')}`);
}

/**
 * `serverless-gpu/pulumi`: the components `sls deploy` declares, for ejected projects and for infra
 * teams composing them into their own programs.
 */
export { ArtifactRegistry } from '../cloudrun/registry';
export { PayloadBucket } from '../cloudrun/payloads';
export { CloudRunFunction } from '../cloudrun/function';
export { GkeCluster } from '../gke/cluster';
export { GkeFunction } from '../gke/function';
export { BatchEnvironment } from '../batch/environment';
export { BatchFunction, jobInstanceTypes } from '../batch/function';
export { declareService } from '../program';
export type { ProgramInput, ProgramOutputs } from '../program';
export type { FunctionSpec, GpuRequest } from '../../plugin/spec';

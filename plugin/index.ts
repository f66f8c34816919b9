/**
 * The Serverless Framework plugin: registers provider `gpu` with its config schema, and maps the
 * framework's lifecycle hooks and the `sls gpu` commands to the stages of the pipeline. Logs through
 * the framework's injected log/progress API; our typed errors become the framework's errors here only.
 */
import fs from 'node:fs';
import path from 'node:path';
import { readServiceConfig, type RawService, type ServiceConfig } from './config';
import { compileService, outputDir, resolveSpecs, type CompiledFunctionInfo, type CompiledService } from './compile';
import { programInput, pulumiConfig, readImages } from './program-input';
import type { ProgramInput } from '../providers/program';
import { readContracts } from './contract';
import { writeClient, type ClientFunction } from './client-gen';
import { errorCode, isProviderError } from './errors';
import type { FunctionSpec } from './spec';
import { customProperties, functionProperties, providerProperties } from './schema';
import { loadProvider } from '../providers';
import type { DeployedService, Provider, ProviderIO } from '../providers/types';
import type { Target } from '../runtime-shim/types';
import { bindFunction } from '../runtime-shim/client';
import { isRemoteError } from '../runtime-shim/client/errors';

interface FrameworkLog {
  (message: string): void;
  error(message: string): void;
  warning(message: string): void;
  notice(message: string): void;
  info(message: string): void;
  verbose(message: string): void;
  success(message: string): void;
}

interface FrameworkUtils {
  log: FrameworkLog;
  writeText(text: string): void;
  progress: { get(name: string): { notice(message: string): void; info?(message: string): void; remove(): void } };
}

interface Serverless {
  serviceDir: string;
  configurationFilename?: string;
  service: RawService & {
    functions: Record<string, Record<string, unknown> & { package?: Record<string, unknown> }>;
  };
  setProvider(name: string, provider: unknown): void;
  processedInput?: { commands?: string[] };
  configSchemaHandler: {
    defineProvider(name: string, options: object): void;
    defineCustomProperties(schema: object): void;
  };
  classes: { Error: new (message: string, code?: string) => Error };
}

type Options = Record<string, string | boolean | undefined> & { stage?: string; function?: string; data?: string; path?: string };

class ServerlessGpuPlugin {
  readonly hooks: Record<string, () => Promise<void>>;
  readonly commands: Record<string, unknown>;
  readonly provider = this;
  private compiled: CompiledService | undefined;
  private config: ServiceConfig | undefined;
  private resolvedSpecs: FunctionSpec[] | undefined;

  constructor(
    private readonly serverless: Serverless,
    private readonly options: Options,
    private readonly utils: FrameworkUtils,
  ) {
    serverless.setProvider('gpu', this);
    serverless.configSchemaHandler.defineProvider('gpu', { provider: providerProperties, function: functionProperties });
    serverless.configSchemaHandler.defineCustomProperties(customProperties);

    this.commands = {
      gpu: {
        type: 'container',
        usage: 'serverless-gpu: typed client, plan and eject',
        commands: {
          client: {
            usage: 'Write the typed client package for the stage (endpoints of the last deploy)',
            lifecycleEvents: ['client'],
            options: { out: { usage: 'Folder to write the client package to (default custom.gpu.client.out)', type: 'string' } },
          },
          plan: {
            usage: 'Print every resource the Pulumi program declares and the hourly cost floor (offline, under mocks)',
            lifecycleEvents: ['plan'],
            options: { json: { usage: 'Print the plan as JSON', type: 'boolean' } },
          },
          weights: {
            usage: 'Sync the weights folders of the functions on cloud targets to provider.weights.bucket, without a deploy',
            lifecycleEvents: ['weights'],
          },
          eject: {
            usage: 'Write the Pulumi program as a standalone TypeScript project for review and `pulumi up`',
            lifecycleEvents: ['eject'],
            options: { out: { usage: 'Folder to write the project to', type: 'string', required: true } },
          },
        },
      },
    };

    const step = (name: string, run: () => Promise<void>) => async () => {
      this.utils.log.verbose(`serverless-gpu: ${name}`);
      try {
        await run();
      } catch (error) {
        throw this.frameworkError(error);
      }
    };
    this.hooks = {
      initialize: step('initialize', () => this.checkTools()),
      'before:package:createDeploymentArtifacts': step('package', () => this.package()),
      'deploy:deploy': step('deploy', () => this.deploy()),
      'info:info': step('info', () => this.info()),
      'invoke:invoke': step('invoke', () => this.invoke()),
      'logs:logs': step('logs', () => this.logs()),
      'remove:remove': step('remove', () => this.remove()),
      'gpu:client:client': step('client', () => this.client()),
      'gpu:plan:plan': step('plan', () => this.plan()),
      'gpu:eject:eject': step('eject', () => this.eject()),
      'gpu:weights:weights': step('weights', () => this.weights().then(() => undefined)),
    };
  }

  static getProviderName(): string {
    return 'gpu';
  }

  getProviderName(): string {
    return 'gpu';
  }

  private get io(): ProviderIO {
    const { log, progress } = this.utils;
    return {
      info: (m) => log.info(m),
      notice: (m) => log.notice(m),
      warning: (m) => log.warning(m),
      verbose: (m) => log.verbose(m),
      progress: (name, message) => {
        const bar = progress.get(name);
        bar.notice(message);
        return { update: (m) => bar.notice(m), remove: () => bar.remove() };
      },
    };
  }

  private serviceConfig(): ServiceConfig {
    if (this.config) return this.config;
    const service = this.serverless.service;
    const functions: Record<string, Record<string, unknown>> = {};
    for (const [name, fn] of Object.entries(service.functions ?? {})) {
      const { package: _package, ...rest } = fn;
      functions[name] = rest;
    }
    this.config = readServiceConfig(
      { service: service.service, provider: service.provider, functions, custom: service.custom },
      { stage: this.options.stage, serviceDir: this.serverless.serviceDir, file: this.serverless.configurationFilename },
    );
    return this.config;
  }

  private async package(): Promise<void> {
    const config = this.serviceConfig();
    this.compiled = await compileService(config, this.io);
    // Our artifacts replace the framework's zip: a function with an artifact is not zipped.
    for (const { spec, artifact } of this.compiled.functions) {
      const fn = this.serverless.service.functions[spec.name];
      fn.package = { ...(fn.package ?? {}), artifact: artifact.dir };
    }
    this.utils.log.notice(
      `Packaged ${this.compiled.functions.length} function(s): ${this.compiled.functions.map((f) => `${f.spec.name} (${f.spec.target})`).join(', ')}`,
    );
  }

  /** Compiled functions grouped by the provider that deploys them (the cloud targets share one). */
  private async byProvider(): Promise<Map<Provider, CompiledFunctionInfo[]>> {
    const groups = new Map<Provider, CompiledFunctionInfo[]>();
    for (const fn of this.compiled?.functions ?? []) {
      const provider = await loadProvider(fn.spec.target);
      groups.set(provider, [...(groups.get(provider) ?? []), fn]);
    }
    return groups;
  }

  /** Providers of the targets the service uses, each once. */
  private async providersInUse(): Promise<Provider[]> {
    return [...new Set(await Promise.all([...(await this.targetsInUse())].map((target) => loadProvider(target))))];
  }

  /** Before `sls deploy`/`sls remove` touch anything: the Pulumi CLI must be there for cloud targets. */
  private async checkTools(): Promise<void> {
    const command = this.serverless.processedInput?.commands?.[0];
    if (command !== 'deploy' && command !== 'remove') return;
    const targets = await this.targetsInUse();
    if ([...targets].some((target) => target !== 'local')) {
      const { ensurePulumiCli } = await import('../providers/pulumi/stack');
      ensurePulumiCli();
    }
  }

  private async deploy(): Promise<void> {
    const config = this.serviceConfig();
    this.compiled ??= await compileService(config, this.io);
    const deployed: Record<string, DeployedService['functions'][string]> = {};
    const versions = await this.weights();
    for (const [provider, compiled] of await this.byProvider()) {
      // Each function reads the weights version this deploy synced (mounts switch with the new revision).
      const functions = compiled.map((fn) => {
        const version = fn.spec.weights && fn.spec.target !== 'local' ? versions[fn.spec.weights.prefix] : undefined;
        return version ? { ...fn, spec: { ...fn.spec, weights: { ...fn.spec.weights!, version } } } : fn;
      });
      const result = await provider.deploy({ config, functions, io: this.io });
      Object.assign(deployed, result.functions);
    }
    const files = this.writeClientPackage(config.client.out, deployed);
    const lines = Object.entries(deployed).map(([name, fn]) => `  ${name} (${fn.target}): ${fn.batch ? fn.batch.jobQueue : fn.endpoints.join(', ')}`);
    this.utils.log.success(`Deployed ${config.service} (stage ${config.stage})`);
    this.utils.writeText(`endpoints:\n${lines.join('\n')}\nclient: ${path.relative(config.serviceDir, path.dirname(files[0])) || '.'}`);
  }

  private writeClientPackage(outDir: string, deployed: DeployedService['functions']): string[] {
    const config = this.serviceConfig();
    const compiled = this.compiled!;
    const functions: ClientFunction[] = compiled.functions.map(({ spec, contract }) => ({
      name: spec.name,
      relFile: spec.relFile,
      contract,
      deployed: deployed[spec.name],
      target: spec.target,
    }));
    return writeClient(outDir, { packageName: config.client.name, service: config.service, stage: config.stage, functions });
  }

  private async deployedFunctions(): Promise<DeployedService['functions']> {
    const deployed: Record<string, DeployedService['functions'][string]> = {};
    const config = this.serviceConfig();
    for (const provider of await this.providersInUse()) {
      try {
        Object.assign(deployed, (await provider.deployed(config))?.functions ?? {});
      } catch (error) {
        // Without the Pulumi CLI the cloud stack cannot be read: its functions get no endpoint.
        if (!(isProviderError(error) && error.code === 'PULUMI_CLI_MISSING')) throw error;
        this.utils.log.warning(`cannot read the deployed cloud endpoints: ${error.message}`);
      }
    }
    return deployed;
  }

  private async client(): Promise<void> {
    const config = this.serviceConfig();
    if (!this.compiled) {
      // Contracts only: no bundling is needed to write the client.
      const resolved = await resolveSpecs(config);
      const requests = resolved.map(({ spec, source }) => ({ file: source.file, exportName: source.exportName, functionName: spec.name }));
      const contracts = readContracts(requests, config.serviceDir);
      this.compiled = {
        config,
        functions: resolved.map(({ spec }, i) => ({
          spec,
          contract: contracts.get(requests[i])!,
          artifact: { name: spec.name, dir: '', manifestFile: '', externals: [] },
        })),
      };
    }
    const out = typeof this.options.out === 'string' ? path.resolve(process.cwd(), this.options.out) : config.client.out;
    const deployed = await this.deployedFunctions();
    const files = this.writeClientPackage(out, deployed);
    const missing = config.functions.filter((fn) => !deployed[fn.name]).map((fn) => fn.name);
    if (missing.length) this.utils.log.warning(`not deployed yet, no endpoint baked in: ${missing.join(', ')}`);
    this.utils.log.success(`Wrote the typed client to ${path.relative(process.cwd(), path.dirname(files[0])) || '.'}`);
  }

  private async info(): Promise<void> {
    const config = this.serviceConfig();
    const lines = [`service: ${config.service}`, `stage: ${config.stage}`, 'functions:'];
    let any = false;
    for (const provider of await this.providersInUse()) {
      for (const fn of (await provider.info(config)) ?? []) {
        any = true;
        lines.push(`  ${fn.name} (${fn.target}): ${fn.state}`, ...fn.endpoints.map((e) => `    ${e}`));
      }
    }
    if (!any) lines.push('  (nothing deployed for this stage)');
    this.utils.writeText(lines.join('\n'));
  }

  private async invoke(): Promise<void> {
    const name = this.options.function;
    if (typeof name !== 'string') throw new this.serverless.classes.Error('sls invoke needs --function (-f) NAME', 'GPU_INVOKE_NO_FUNCTION');
    const deployed = (await this.deployedFunctions())[name];
    if (!deployed) {
      throw new this.serverless.classes.Error(`function ${name} is not deployed for stage ${this.serviceConfig().stage}`, 'GPU_NOT_DEPLOYED');
    }
    let raw = typeof this.options.data === 'string' ? this.options.data : undefined;
    if (raw === undefined && typeof this.options.path === 'string') raw = fs.readFileSync(path.resolve(this.options.path), 'utf8');
    let input: unknown = raw;
    if (raw !== undefined) {
      try {
        input = JSON.parse(raw);
      } catch {
        input = raw; // a plain string input
      }
    }
    try {
      // The same transport the generated client picks for the target (HTTP, ID token, Batch job).
      const config = this.serviceConfig();
      const deployment = { service: config.service, stage: config.stage, functions: { [name]: deployed } };
      const output = await bindFunction(deployment, name).remote(input);
      this.utils.writeText(JSON.stringify(output, null, 2));
    } catch (error) {
      if (!isRemoteError(error)) throw error;
      const detail = error.path ? ` (at ${error.path})` : '';
      const stack = error.remoteStack ? `\nremote stack:\n${error.remoteStack}` : '';
      throw new this.serverless.classes.Error(`${error.type}: ${error.message}${detail}${stack}`, 'GPU_REMOTE_ERROR');
    }
  }

  private async logs(): Promise<void> {
    const name = this.options.function;
    if (typeof name !== 'string') throw new this.serverless.classes.Error('sls logs needs --function (-f) NAME', 'GPU_LOGS_NO_FUNCTION');
    const config = this.serviceConfig();
    const fn = config.functions.find((f) => f.name === name);
    if (!fn) throw new this.serverless.classes.Error(`no function ${name} in ${config.service}`, 'GPU_NO_FUNCTION');
    const spec = (await this.specs()).find((s) => s.name === name)!;
    const provider = await loadProvider(spec.target);
    this.utils.writeText(await provider.logs(config, name));
  }

  private async remove(): Promise<void> {
    const config = this.serviceConfig();
    for (const provider of await this.providersInUse()) await provider.remove(config, this.io);
    this.utils.log.success(`Removed ${config.service} (stage ${config.stage})`);
  }

  /** The program's input: specs, and the images the last package pushed (placeholders before any). */
  private async programInput(): Promise<ProgramInput> {
    const config = this.serviceConfig();
    return programInput(config, await this.specs(), readImages(outputDir(config)));
  }

  private async plan(): Promise<void> {
    const config = this.serviceConfig();
    const input = await this.programInput();
    if (input.functions.length === 0) {
      this.utils.writeText(this.options.json ? JSON.stringify({ resources: [], costFloorPerHour: 0 }, null, 2) : 'Every function runs on the local target: the program declares nothing.');
      return;
    }
    const { planProgram, renderPlan } = await import('./plan');
    const plan = await planProgram(input, pulumiConfig(config));
    this.utils.writeText(
      this.options.json
        ? JSON.stringify({ resources: plan.resources.map(({ type, name, parent, inputs }) => ({ type, name, parent, inputs })), costFloorPerHour: plan.costFloorPerHour }, null, 2)
        : renderPlan(plan, config.service, config.stage),
    );
  }

  /** Syncs the weights of functions on cloud targets; returns the current version per prefix. */
  private async weights(): Promise<Record<string, string>> {
    const specs = (await this.specs()).filter((spec) => spec.target !== 'local' && spec.weights);
    if (specs.length === 0) {
      if (this.serverless.processedInput?.commands?.[1] === 'weights') this.utils.log.notice('No function on a cloud target reads weights: nothing to sync.');
      return {};
    }
    const { syncServiceWeights } = await import('./weights');
    const synced = await syncServiceWeights(this.serviceConfig(), specs, this.io);
    const versions: Record<string, string> = {};
    for (const [prefix, entry] of Object.entries(synced)) {
      if (entry.version) versions[prefix] = entry.version;
      for (const [store, result] of Object.entries(entry.results)) {
        this.utils.log.notice(
          `weights ${prefix} (${store}): version ${result.version}, ${result.uploadedFiles} of ${result.files} file(s) uploaded (${result.uploadedBytes} bytes)`,
        );
      }
    }
    return versions;
  }

  private async eject(): Promise<void> {
    const config = this.serviceConfig();
    const out = path.resolve(process.cwd(), String(this.options.out));
    const input = await this.programInput();
    if (input.functions.length === 0) throw new this.serverless.classes.Error('every function runs on the local target: there is no program to eject', 'GPU_NOTHING_TO_EJECT');
    const { ejectProject } = await import('./eject');
    const files = ejectProject(input, pulumiConfig(config), out);
    this.utils.log.success(`Ejected the Pulumi program of ${config.service} (stage ${config.stage}) to ${path.relative(process.cwd(), out) || '.'}: ${files.map((f) => path.basename(f)).join(', ')}`);
  }

  private async specs(): Promise<FunctionSpec[]> {
    this.resolvedSpecs ??= this.compiled
      ? this.compiled.functions.map((f) => f.spec)
      : (await resolveSpecs(this.serviceConfig())).map((r) => r.spec);
    return this.resolvedSpecs;
  }

  /** Targets the service's functions use (annotation or serverless.yml). */
  private async targetsInUse(): Promise<Set<Target>> {
    return new Set((await this.specs()).map((spec) => spec.target));
  }

  private frameworkError(error: unknown): Error {
    const code = errorCode(error);
    if (!code) return error as Error;
    return new this.serverless.classes.Error((error as Error).message, code);
  }
}

export = ServerlessGpuPlugin;

/**
 * A fake AWS Batch control plane on loopback, for the real `@aws-sdk/client-batch` (reached through
 * AWS_ENDPOINT_URL_BATCH). It answers the two REST-JSON operations the client uses — POST /v1/submitjob
 * and POST /v1/describejobs — records every request body, and runs jobs the way Batch runs the job
 * definition's container: `node <artifact>/shim.js <artifact>/manifest.json` with the definition's
 * environment, the SubmitJob overrides and AWS_BATCH_JOB_ARRAY_INDEX per child of an array job (children
 * run at once). Statuses come from the processes' exit codes. No retries, no queue, no scheduling.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import path from 'node:path';
import { runContainer, type UnpackedImage } from './registry';

export interface FakeJobDefinition {
  /** Folder with shim.js and manifest.json (what the image's code layer holds). */
  readonly artifactDir?: string;
  /** Or the function's image, unpacked: its containers run under runc, as Batch runs the image. */
  readonly image?: UnpackedImage;
  /** The job definition's containerProperties.environment. */
  readonly environment: Readonly<Record<string, string>>;
}

export interface RecordedRequest {
  readonly operation: 'SubmitJob' | 'DescribeJobs';
  readonly body: Record<string, unknown>;
  /** SubmitJob: the job id it answered. */
  jobId?: string;
}

export interface ContainerRun {
  readonly jobId: string;
  readonly env: Readonly<Record<string, string>>;
  readonly startedAt: number;
  stoppedAt?: number;
  exitCode?: number | null;
  output: string;
}

interface Job {
  readonly jobId: string;
  readonly jobName: string;
  readonly jobQueue: string;
  readonly jobDefinition: string;
  readonly createdAt: number;
  readonly size?: number;
  readonly index?: number;
  readonly children: Job[];
  run?: ContainerRun;
  /** A job that could not start: its reason. */
  startFailure?: string;
}

const TERMINAL = new Set(['SUCCEEDED', 'FAILED']);
const CONTAINER_LIMIT_MS = 90_000;

export class FakeBatch {
  readonly requests: RecordedRequest[] = [];
  readonly runs: ContainerRun[] = [];
  private readonly jobs = new Map<string, Job>();
  private readonly processes = new Set<ChildProcess>();
  private server: http.Server | undefined;
  url = '';

  /**
   * @param definitions job definitions by name
   * @param hostEnv what the instance gives every container (credentials, region, endpoints)
   */
  constructor(
    private readonly definitions: Readonly<Record<string, FakeJobDefinition>>,
    private readonly hostEnv: Readonly<Record<string, string>>,
  ) {}

  async start(): Promise<string> {
    this.server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (chunk: Buffer) => (body += chunk.toString()));
      req.on('end', () => this.route(req, body, res));
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as { port: number }).port}`;
    return this.url;
  }

  /** Kills what still runs and stops the server. */
  async stop(): Promise<void> {
    for (const child of this.processes) child.kill('SIGKILL');
    await Promise.all(
      [...this.processes].map((child) => new Promise<void>((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve() : child.once('exit', () => resolve())))),
    );
    if (this.server) {
      this.server.closeAllConnections();
      await new Promise<void>((resolve) => this.server!.close(() => resolve()));
    }
  }

  submitted(): Array<Record<string, unknown>> {
    return this.requests.filter((r) => r.operation === 'SubmitJob').map((r) => r.body);
  }

  /** The job ids each DescribeJobs asked about. */
  described(): string[][] {
    return this.requests.filter((r) => r.operation === 'DescribeJobs').map((r) => r.body.jobs as string[]);
  }

  /** The container runs of a job (one for a plain job, one per child of an array job). */
  runsOf(jobId: string): ContainerRun[] {
    return this.runs.filter((run) => run.jobId === jobId || run.jobId.startsWith(`${jobId}:`));
  }

  private route(req: http.IncomingMessage, body: string, res: http.ServerResponse): void {
    const reply = (status: number, value: unknown, errorType?: string): void => {
      res.writeHead(status, { 'content-type': 'application/json', ...(errorType && { 'x-amzn-errortype': errorType }) });
      res.end(JSON.stringify(value));
    };
    let parsed: Record<string, unknown>;
    try {
      parsed = JSON.parse(body || '{}') as Record<string, unknown>;
    } catch {
      reply(400, { message: 'body is not JSON' }, 'ClientException');
      return;
    }
    if (req.method === 'POST' && req.url === '/v1/submitjob') {
      const recorded: RecordedRequest = { operation: 'SubmitJob', body: parsed };
      this.requests.push(recorded);
      const result = this.submit(parsed);
      if ('error' in result) {
        reply(400, { message: result.error }, 'ClientException');
      } else {
        recorded.jobId = result.jobId;
        reply(200, result);
      }
      return;
    }
    if (req.method === 'POST' && req.url === '/v1/describejobs') {
      this.requests.push({ operation: 'DescribeJobs', body: parsed });
      const ids = (parsed.jobs as string[] | undefined) ?? [];
      if (ids.length > 100) {
        reply(400, { message: 'at most 100 jobs' }, 'ClientException');
        return;
      }
      reply(200, { jobs: ids.map((id) => this.jobs.get(id)).filter((job): job is Job => Boolean(job)).map((job) => this.describe(job)) });
      return;
    }
    reply(404, { message: `no route ${req.method} ${req.url}` }, 'ClientException');
  }

  private submit(request: Record<string, unknown>): { jobId: string; jobName: string; jobArn: string } | { error: string } {
    const jobName = request.jobName as string;
    if (!/^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$/.test(jobName ?? '')) return { error: `invalid jobName "${jobName}"` };
    const definition = this.definitions[request.jobDefinition as string];
    if (!definition) return { error: `job definition ${String(request.jobDefinition)} does not exist` };
    if (!request.jobQueue) return { error: 'jobQueue is required' };
    const size = (request.arrayProperties as { size?: number } | undefined)?.size;
    if (size !== undefined && (size < 2 || size > 10_000)) return { error: `array size ${size} must be 2..10000` };
    const overrides = Object.fromEntries(
      (((request.containerOverrides as { environment?: Array<{ name: string; value: string }> } | undefined)?.environment) ?? []).map((e) => [e.name, e.value]),
    );
    const jobId = randomUUID();
    const base = { jobName, jobQueue: request.jobQueue as string, jobDefinition: request.jobDefinition as string, createdAt: Date.now() };
    const job: Job = { ...base, jobId, size, children: [] };
    this.jobs.set(jobId, job);
    if (size === undefined) {
      this.launch(job, definition, overrides);
    } else {
      for (let index = 0; index < size; index += 1) {
        const child: Job = { ...base, jobId: `${jobId}:${index}`, index, children: [] };
        job.children.push(child);
        this.jobs.set(child.jobId, child);
        this.launch(child, definition, overrides);
      }
    }
    return { jobId, jobName, jobArn: `arn:aws:batch:us-east-1:123456789012:job/${jobId}` };
  }

  private launch(job: Job, definition: FakeJobDefinition, overrides: Record<string, string>): void {
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      ...this.hostEnv,
      ...definition.environment,
      ...overrides,
      ...containerEnv(job),
    };
    const run: ContainerRun = { jobId: job.jobId, env, startedAt: Date.now(), output: '' };
    job.run = run;
    this.runs.push(run);
    const child = definition.image
      ? runContainer(definition.image, `sgpu-batch-${process.pid}-${this.runs.length}`, { ...this.hostEnv, ...definition.environment, ...overrides, ...containerEnv(job) })
      : spawn(process.execPath, [path.join(definition.artifactDir!, 'shim.js'), path.join(definition.artifactDir!, 'manifest.json')], {
          env,
          stdio: ['ignore', 'pipe', 'pipe'],
        });
    this.processes.add(child);
    const limit = setTimeout(() => child.kill('SIGKILL'), CONTAINER_LIMIT_MS);
    child.stdout!.on('data', (d: Buffer) => (run.output += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (run.output += d.toString()));
    child.on('error', (error) => {
      job.startFailure = `CannotStartContainerError: ${error.message}`;
    });
    child.on('exit', (code) => {
      clearTimeout(limit);
      this.processes.delete(child);
      run.exitCode = code;
      run.stoppedAt = Date.now();
    });
  }

  private statusOf(job: Job): string {
    if (job.size !== undefined) {
      const statuses = job.children.map((child) => this.statusOf(child));
      if (!statuses.every((s) => TERMINAL.has(s))) return 'PENDING';
      return statuses.every((s) => s === 'SUCCEEDED') ? 'SUCCEEDED' : 'FAILED';
    }
    if (job.startFailure) return 'FAILED';
    if (!job.run || job.run.stoppedAt === undefined) return 'RUNNING';
    return job.run.exitCode === 0 ? 'SUCCEEDED' : 'FAILED';
  }

  private describe(job: Job): Record<string, unknown> {
    const status = this.statusOf(job);
    const detail: Record<string, unknown> = {
      jobArn: `arn:aws:batch:us-east-1:123456789012:job/${job.jobId}`,
      jobId: job.jobId,
      jobName: job.jobName,
      jobQueue: job.jobQueue,
      jobDefinition: job.jobDefinition,
      status,
      createdAt: job.createdAt,
    };
    if (job.size !== undefined) {
      const summary: Record<string, number> = {};
      for (const child of job.children) {
        const s = this.statusOf(child);
        summary[s] = (summary[s] ?? 0) + 1;
      }
      detail.arrayProperties = { size: job.size, statusSummary: summary };
      if (status === 'FAILED') detail.statusReason = 'Array Child Job failed';
      return detail;
    }
    if (job.index !== undefined) detail.arrayProperties = { index: job.index };
    if (job.run) detail.startedAt = job.run.startedAt;
    if (job.run?.stoppedAt !== undefined) detail.stoppedAt = job.run.stoppedAt;
    if (job.startFailure) detail.statusReason = job.startFailure;
    else if (status === 'FAILED') detail.statusReason = 'Essential container in task exited';
    if (job.run) {
      detail.container = {
        ...(job.run.exitCode !== undefined && job.run.exitCode !== null && { exitCode: job.run.exitCode }),
        ...(job.run.exitCode === null && { reason: 'the container was killed by a signal' }),
        logStreamName: `fake/default/${job.jobId.replace(/:/g, '-')}`,
      };
    }
    return detail;
  }
}

/** What Batch sets in every container of a job. */
function containerEnv(job: Job): Record<string, string> {
  return {
    AWS_BATCH_JOB_ID: job.jobId,
    AWS_BATCH_JQ_NAME: job.jobQueue,
    AWS_BATCH_JOB_ATTEMPT: '1',
    ...(job.index !== undefined && { AWS_BATCH_JOB_ARRAY_INDEX: String(job.index) }),
  };
}


/**
 * Where registry credentials come from, in order: `~/.docker/config.json` (or `$DOCKER_CONFIG`), then
 * the cloud the registry belongs to — Artifact Registry / GCR take `oauth2accesstoken` with a Google
 * access token (google-auth-library), ECR takes the password from `GetAuthorizationToken` (AWS SDK v3) —
 * else anonymous. Secrets are kept out of messages: only the user name and the source are ever printed.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface Credentials {
  readonly username: string;
  readonly password: string;
  /** For messages: where they came from, e.g. `~/.docker/config.json`. */
  readonly source: string;
}

export type CredentialSource = (registry: string) => Promise<Credentials | undefined>;

interface DockerConfig {
  auths?: Record<string, { auth?: string; username?: string; password?: string; identitytoken?: string }>;
}

function dockerConfigFile(): string {
  return path.join(process.env.DOCKER_CONFIG ?? path.join(os.homedir(), '.docker'), 'config.json');
}

/** Keys in `auths` may be bare hosts or URLs (`https://index.docker.io/v1/`). */
function matchesRegistry(key: string, registry: string): boolean {
  const host = key.replace(/^https?:\/\//, '').replace(/\/.*$/, '');
  if (host === registry) return true;
  const hub = ['index.docker.io', 'registry-1.docker.io', 'docker.io'];
  return hub.includes(host) && hub.includes(registry);
}

export const fromDockerConfig: CredentialSource = async (registry) => {
  const file = dockerConfigFile();
  let config: DockerConfig;
  try {
    config = JSON.parse(fs.readFileSync(file, 'utf8')) as DockerConfig;
  } catch {
    return undefined;
  }
  const entry = Object.entries(config.auths ?? {}).find(([key]) => matchesRegistry(key, registry))?.[1];
  if (!entry) return undefined;
  const source = file.replace(os.homedir(), '~');
  if (entry.identitytoken) return { username: '<token>', password: entry.identitytoken, source };
  if (entry.username && entry.password) return { username: entry.username, password: entry.password, source };
  if (entry.auth) {
    const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon > 0) return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1), source };
  }
  return undefined;
};

export function isGoogleRegistry(registry: string): boolean {
  return /(^|\.)gcr\.io$/.test(registry) || /-docker\.pkg\.dev$/.test(registry);
}

const ECR_HOST = /^(\d{12})\.dkr\.ecr(?:-fips)?\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?$/;

export function ecrRegion(registry: string): string | undefined {
  return ECR_HOST.exec(registry)?.[2];
}

export const fromGoogle: CredentialSource = async (registry) => {
  if (!isGoogleRegistry(registry)) return undefined;
  const { GoogleAuth } = await import('google-auth-library');
  const token = await new GoogleAuth({ scopes: 'https://www.googleapis.com/auth/cloud-platform' }).getAccessToken();
  if (!token) throw new Error(`no Google access token for ${registry}: run "gcloud auth application-default login" or set GOOGLE_APPLICATION_CREDENTIALS`);
  return { username: 'oauth2accesstoken', password: token, source: 'Google application default credentials' };
};

export const fromEcr: CredentialSource = async (registry) => {
  const region = ecrRegion(registry);
  if (!region) return undefined;
  const { ECRClient, GetAuthorizationTokenCommand } = await import('@aws-sdk/client-ecr');
  const reply = await new ECRClient({ region }).send(new GetAuthorizationTokenCommand({}));
  const token = reply.authorizationData?.[0]?.authorizationToken;
  if (!token) throw new Error(`ECR returned no authorization token for ${registry}`);
  const decoded = Buffer.from(token, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1), source: 'ECR GetAuthorizationToken' };
};

/** The default chain: docker config first (it wins where the user logged in by hand), then the clouds. */
export const DEFAULT_SOURCES: readonly CredentialSource[] = [fromDockerConfig, fromGoogle, fromEcr];

export async function findCredentials(registry: string, sources: readonly CredentialSource[] = DEFAULT_SOURCES): Promise<Credentials | undefined> {
  for (const source of sources) {
    const found = await source(registry);
    if (found) return found;
  }
  return undefined;
}

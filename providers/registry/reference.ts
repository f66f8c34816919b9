/**
 * Image references as Docker reads them: `[host[:port]/]path[:tag][@digest]`. A first component with a
 * dot or a colon, or `localhost`, is a registry host; otherwise the image is on Docker Hub, where
 * one-component names live under `library/`.
 */
export interface ImageReference {
  /** Host (and port) of the registry, e.g. `us-central1-docker.pkg.dev` or `127.0.0.1:5000`. */
  readonly registry: string;
  /** Repository path inside the registry, e.g. `acme/ml/classifier`. */
  readonly repository: string;
  readonly tag?: string;
  readonly digest?: string;
}

export const DOCKER_HUB = 'registry-1.docker.io';

export function parseReference(ref: string): ImageReference {
  let rest = ref.trim();
  if (!rest || /\s/.test(rest)) throw new Error(`"${ref}" is not an image reference`);
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!/^sha256:[0-9a-f]{64}$/.test(digest)) throw new Error(`"${ref}" has an invalid digest`);
  }
  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf('/');
  const colon = rest.lastIndexOf(':');
  if (colon > lastSlash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/.test(tag)) throw new Error(`"${ref}" has an invalid tag "${tag}"`);
  }
  const first = rest.split('/')[0];
  const hasHost = rest.includes('/') && (first.includes('.') || first.includes(':') || first === 'localhost');
  const registry = hasHost ? first : DOCKER_HUB;
  let repository = hasHost ? rest.slice(first.length + 1) : rest;
  if (!hasHost && !repository.includes('/')) repository = `library/${repository}`;
  if (!/^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:\/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$/.test(repository)) {
    throw new Error(`"${ref}" has an invalid repository "${repository}" (lowercase letters, digits, . _ - and /)`);
  }
  return { registry, repository, tag: tag ?? (digest ? undefined : 'latest'), digest };
}

export function formatReference(ref: ImageReference): string {
  const name = `${ref.registry}/${ref.repository}`;
  if (ref.digest) return `${name}@${ref.digest}`;
  return `${name}:${ref.tag ?? 'latest'}`;
}

/** Registries on this machine are spoken to over plain HTTP, as Docker does; every other over HTTPS. */
export function isLoopbackRegistry(registry: string): boolean {
  // `[::1]:5000` and `[::1]` are bracketed; an unbracketed name with two colons or more is a bare IPv6 address (no port).
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(registry);
  const host = bracketed ? bracketed[1] : registry.split(':').length > 2 ? registry : registry.replace(/:\d+$/, '');
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

export function registryBaseUrl(registry: string): string {
  return `${isLoopbackRegistry(registry) ? 'http' : 'https'}://${registry === DOCKER_HUB ? DOCKER_HUB : registry}`;
}

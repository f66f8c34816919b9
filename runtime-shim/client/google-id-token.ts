/**
 * Google ID tokens for calls to Cloud Run services, which are never public by default: each request
 * carries `Authorization: Bearer <ID token>` whose audience is the service URL.
 *
 * Credentials come from Application Default Credentials (google-auth-library): a service-account key
 * in GOOGLE_APPLICATION_CREDENTIALS, or the metadata server when the caller itself runs on Google Cloud
 * (Cloud Run, GKE, GCE). One ID token client per audience, cached; the library refreshes the token before
 * it expires. `google-auth-library` is imported lazily, on the first request.
 */
import type { GoogleAuth, GoogleAuthOptions, IdTokenClient } from 'google-auth-library';
import { RemoteError } from './errors';
import type { HeaderSource } from './http-transport';

export interface GoogleIdTokenOptions {
  /** The function called, for the errors' messages. */
  readonly functionName?: string;
  /** Passed to `new GoogleAuth(...)` (credentials, keyFile, clientOptions); default: Application Default Credentials. */
  readonly authOptions?: GoogleAuthOptions;
  /** The audience of an endpoint; default its origin, i.e. the Cloud Run service URL. */
  readonly audience?: (endpoint: string) => string;
}

/** The origin of an endpoint URL (`https://svc-abc-uc.a.run.app/` → `https://svc-abc-uc.a.run.app`). */
export function defaultAudience(endpoint: string): string {
  try {
    return new URL(endpoint).origin;
  } catch {
    return endpoint.replace(/\/+$/, '');
  }
}

/** True for failures that another try may not repeat: no answer from the token endpoint, or a 5xx/429 from it. */
function isTransient(error: unknown): boolean {
  const e = error as { status?: number; response?: { status?: number }; code?: string };
  const status = e?.response?.status ?? e?.status;
  if (typeof status === 'number') return status >= 500 || status === 429;
  return typeof e?.code === 'string' && /^(ECONNREFUSED|ECONNRESET|ETIMEDOUT|EAI_AGAIN|ENOTFOUND|EHOSTUNREACH|ENETUNREACH|UND_ERR)/.test(e.code);
}

/** A HeaderSource adding a Google ID token for the endpoint's audience to every request. */
export function googleIdTokenHeaders(options: GoogleIdTokenOptions = {}): HeaderSource {
  let auth: Promise<GoogleAuth> | undefined;
  const clients = new Map<string, Promise<IdTokenClient>>();
  const audienceOf = options.audience ?? defaultAudience;

  const clientFor = (audience: string): Promise<IdTokenClient> => {
    let client = clients.get(audience);
    if (!client) {
      auth ??= import('google-auth-library').then(({ GoogleAuth }) => new GoogleAuth(options.authOptions));
      client = auth.then((a) => a.getIdTokenClient(audience));
      clients.set(audience, client);
      // Not cached when it fails: the next request tries again (credentials may appear, a server may come back).
      client.catch(() => clients.delete(audience));
    }
    return client;
  };

  return async (endpoint: string): Promise<Record<string, string>> => {
    const audience = audienceOf(endpoint);
    try {
      const client = await clientFor(audience);
      const headers = await client.getRequestHeaders(endpoint);
      const authorization = headers.get('authorization');
      if (!authorization) throw new Error('google-auth-library gave no authorization header');
      return { authorization };
    } catch (error) {
      // The transport retries an unreachable token endpoint until the call's deadline; missing or refused
      // credentials will not mend by themselves, so they fail the call at once.
      const message = `cannot get a Google ID token for ${audience}: ${(error as Error).message ?? String(error)}`;
      throw new RemoteError(options.functionName ?? 'google-id-token', isTransient(error) ? { type: 'Unreachable', message } : { type: 'BadRequest', message });
    }
  };
}

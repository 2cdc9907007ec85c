/**
 * Google access tokens for Vertex: a static bearer token, a service-account key file, or
 * Application Default Credentials (GOOGLE_APPLICATION_CREDENTIALS, gcloud user credentials, the
 * metadata server). google-auth-library caches each token and refreshes it before it expires.
 */
import { readFileSync } from 'node:fs';
import { GoogleAuth, gaxios } from 'google-auth-library';

export const CLOUD_PLATFORM_SCOPE = 'https://www.googleapis.com/auth/cloud-platform';
/** Where google-auth-library 10 always sends a service account's JWT-bearer grant. */
export const GOOGLE_TOKEN_URL = 'https://oauth2.googleapis.com/token';

/** Gives the bearer token for the next call. */
export interface TokenSource {
  token(): Promise<string>;
}

/** A service-account key file (the fields we use; Google's JSON has more). */
export interface ServiceAccountKey {
  type: 'service_account';
  client_email: string;
  private_key: string;
  private_key_id?: string;
  project_id?: string;
  token_uri?: string;
}

/** Reads and checks a service-account key file; errors name the file and the field. */
export function readServiceAccount(path: string, field: string): ServiceAccountKey {
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
  } catch (e) {
    throw new Error(`${field}: cannot read a service-account JSON key from ${path}: ${(e as Error).message}`);
  }
  if (json.type !== 'service_account') {
    throw new Error(`${field}: ${path} is not a service-account key (type is ${JSON.stringify(json.type)})`);
  }
  for (const k of ['client_email', 'private_key'] as const) {
    if (typeof json[k] !== 'string' || !json[k]) throw new Error(`${field}: ${path} has no ${k}`);
  }
  return json as unknown as ServiceAccountKey;
}

/**
 * A transporter that sends the token request to the key file's `token_uri`. google-auth-library
 * 10 ignores `token_uri` for service accounts (its gtoken posts to oauth2.googleapis.com/token
 * whatever the file says); an AuthClient's `transporter` option is the supported way to change
 * where its requests go. Only the token URL is redirected; every other request is untouched.
 */
function tokenUriTransporter(tokenUri: string): InstanceType<typeof gaxios.Gaxios> {
  const transporter = new gaxios.Gaxios();
  const target = new URL(tokenUri);
  transporter.interceptors.request.add({
    resolved: async (config) => {
      if (config.url.href === GOOGLE_TOKEN_URL) config.url = new URL(target);
      return config;
    },
  });
  return transporter;
}

/**
 * ADC's first source, GOOGLE_APPLICATION_CREDENTIALS, when it names a service-account key: read
 * here like `keyFile` so its `token_uri` is honoured too. Any other credential type (gcloud user
 * credentials, external accounts) is left to the library.
 */
function adcServiceAccount(env: Record<string, string | undefined>): string | undefined {
  const path = env.GOOGLE_APPLICATION_CREDENTIALS;
  if (!path) return undefined;
  try {
    return (JSON.parse(readFileSync(path, 'utf8')) as { type?: unknown }).type === 'service_account'
      ? path
      : undefined;
  } catch {
    return undefined; // unreadable: the library reports it with its own message
  }
}

/**
 * The token source the options ask for: `accessToken` as it is; `keyFile` through a JWT-bearer
 * grant at the file's `token_uri`; else ADC (GOOGLE_APPLICATION_CREDENTIALS naming a service-account key
 * is read like `keyFile`). Nothing is fetched until the first call.
 */
export function tokenSource(opts: {
  accessToken?: string;
  keyFile?: string;
  field: string;
  env?: Record<string, string | undefined>;
}): TokenSource {
  if (opts.accessToken) {
    const token = opts.accessToken;
    return { token: async () => token };
  }
  let auth: GoogleAuth;
  const keyFile = opts.keyFile ?? adcServiceAccount(opts.env ?? {});
  if (keyFile) {
    const field = opts.keyFile ? `${opts.field}.keyFile` : 'GOOGLE_APPLICATION_CREDENTIALS';
    const key = readServiceAccount(keyFile, field);
    const redirect = key.token_uri && key.token_uri !== GOOGLE_TOKEN_URL;
    auth = new GoogleAuth({
      credentials: key,
      scopes: CLOUD_PLATFORM_SCOPE,
      ...(redirect ? { clientOptions: { transporter: tokenUriTransporter(key.token_uri as string) } } : {}),
    });
  } else {
    auth = new GoogleAuth({ scopes: CLOUD_PLATFORM_SCOPE });
  }
  return {
    token: async () => {
      const t = await auth.getAccessToken();
      if (!t) throw new Error('Google credentials gave no access token');
      return t;
    },
  };
}

/**
 * The emulator's stand-in for Google's OAuth 2.0 token endpoint, so the service-account path of
 * a Vertex client runs offline: `POST /vertex/oauth2/token` takes the JWT-bearer grant a
 * service-account key makes (RFC 7523: `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`,
 * `assertion=<RS256 JWT>`), checks the JWT's signature against the account's registered public
 * key, its audience, times and scope, and issues an access token the Vertex face accepts.
 * Accounts are registered through `POST /_emulator/vertex/service-accounts`: with a
 * `public_key` (PEM) the caller keeps its private key; without one the emulator generates the
 * pair and answers a complete key file whose `token_uri` points here.
 */
import { createPublicKey, generateKeyPairSync, type KeyObject, randomBytes, verify } from 'node:crypto';
import type { EmulatorState } from './http.ts';

export const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
export const CLOUD_PLATFORM_SCOPE = 'https://www.googleapis.com/auth/cloud-platform';
/** The audience google-auth-library signs for (it posts to this URL unless redirected). */
const GOOGLE_TOKEN_URL = 'https://oauth2.googleapis.com/token';
/** Google's access tokens live an hour; it answers `expires_in: 3599`. */
const TOKEN_TTL_S = 3599;
/** Clock skew Google tolerates on `iat`/`exp`. */
const SKEW_S = 300;

interface Issued {
  label: string;
  scopes: string[];
  expiresAt: number;
}

/** The Vertex face's own state beside the emulator's: service accounts and issued tokens. */
export interface VertexAuthState {
  readonly accounts: Map<string, KeyObject>;
  readonly tokens: Map<string, Issued>;
}

const BY_STATE = new WeakMap<EmulatorState, VertexAuthState>();

/** The Vertex auth state of an emulator (created on first use). */
export function vertexAuth(state: EmulatorState): VertexAuthState {
  let v = BY_STATE.get(state);
  if (!v) {
    v = { accounts: new Map(), tokens: new Map() };
    BY_STATE.set(state, v);
  }
  return v;
}

/** An OAuth error answer: `{error, error_description}` as Google's token endpoint sends it. */
export class OAuthError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    description: string,
  ) {
    super(description);
  }
}

/**
 * Registers a service account. With `publicKey` (PEM) it is used to verify the account's JWTs;
 * without one a 2048-bit RSA pair is generated and the whole key file is returned.
 */
export function registerServiceAccount(
  state: EmulatorState,
  opts: { clientEmail: string; publicKey?: string; projectId?: string; tokenUri: string },
): Record<string, string> {
  const auth = vertexAuth(state);
  if (opts.publicKey) {
    auth.accounts.set(opts.clientEmail, createPublicKey(opts.publicKey));
    return { client_email: opts.clientEmail, token_uri: opts.tokenUri };
  }
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  auth.accounts.set(opts.clientEmail, publicKey);
  return {
    type: 'service_account',
    project_id: opts.projectId ?? 'emulator-project',
    private_key_id: randomBytes(20).toString('hex'),
    private_key: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    client_email: opts.clientEmail,
    client_id: String(BigInt(`0x${randomBytes(8).toString('hex')}`)),
    auth_uri: 'https://accounts.google.com/o/oauth2/auth',
    token_uri: opts.tokenUri,
  };
}

function part(s: string | undefined, what: string): Record<string, unknown> {
  try {
    const v = JSON.parse(Buffer.from(s ?? '', 'base64url').toString('utf8')) as unknown;
    if (typeof v === 'object' && v !== null && !Array.isArray(v)) return v as Record<string, unknown>;
  } catch {
    // answered below
  }
  throw new OAuthError(400, 'invalid_grant', `Invalid JWT: the ${what} is not base64url JSON`);
}

/** Checks one JWT-bearer assertion; returns the account and the scopes it asked for. */
function checkAssertion(
  assertion: string,
  state: EmulatorState,
  ownUrl: string,
): { iss: string; scopes: string[] } {
  const [h, p, s] = assertion.split('.');
  if (!h || !p || !s)
    throw new OAuthError(400, 'invalid_grant', 'Invalid JWT: expected three dot-separated parts');
  const header = part(h, 'header');
  const claims = part(p, 'payload');
  if (header.alg !== 'RS256') throw new OAuthError(400, 'invalid_grant', 'Invalid JWT: alg must be RS256');
  const iss = claims.iss;
  const key = typeof iss === 'string' ? vertexAuth(state).accounts.get(iss) : undefined;
  if (typeof iss !== 'string' || !key) {
    throw new OAuthError(400, 'invalid_grant', 'Invalid grant: account not found');
  }
  if (!verify('RSA-SHA256', Buffer.from(`${h}.${p}`), key, Buffer.from(s, 'base64url'))) {
    throw new OAuthError(400, 'invalid_grant', 'Invalid JWT Signature.');
  }
  if (claims.aud !== GOOGLE_TOKEN_URL && claims.aud !== ownUrl) {
    throw new OAuthError(400, 'invalid_grant', `Invalid JWT: aud must be ${GOOGLE_TOKEN_URL}`);
  }
  const now = Math.floor(state.now() / 1000);
  const iat = Number(claims.iat);
  const exp = Number(claims.exp);
  if (
    !Number.isFinite(iat) ||
    !Number.isFinite(exp) ||
    iat > now + SKEW_S ||
    exp < now - SKEW_S ||
    exp - iat > 3600
  ) {
    throw new OAuthError(
      400,
      'invalid_grant',
      'Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe.',
    );
  }
  const scopes = typeof claims.scope === 'string' ? claims.scope.split(' ').filter(Boolean) : [];
  if (!scopes.length)
    throw new OAuthError(400, 'invalid_scope', 'Invalid OAuth scope or ID token audience provided.');
  return { iss, scopes };
}

/** Drops expired tokens once there are many, so a long benchmark does not grow the map forever. */
function forgetExpired(tokens: Map<string, Issued>, now: number): void {
  if (tokens.size < 1024) return;
  for (const [t, i] of tokens) if (i.expiresAt <= now) tokens.delete(t);
}

/** `POST /vertex/oauth2/token`: a JWT-bearer grant → `{access_token, expires_in, token_type}`. */
export async function tokenGrant(raw: Request, state: EmulatorState): Promise<Response> {
  try {
    const form = new URLSearchParams(await raw.text());
    const grant = form.get('grant_type');
    if (grant !== JWT_BEARER) {
      throw new OAuthError(400, 'unsupported_grant_type', `Invalid grant_type: ${grant ?? ''}`);
    }
    const ownUrl = new URL(raw.url).href;
    const { iss, scopes } = checkAssertion(form.get('assertion') ?? '', state, ownUrl);
    const token = `ya29.emulator-${randomBytes(24).toString('base64url')}`;
    forgetExpired(vertexAuth(state).tokens, state.now());
    vertexAuth(state).tokens.set(token, { label: iss, scopes, expiresAt: state.now() + TOKEN_TTL_S * 1000 });
    return Response.json({ access_token: token, expires_in: TOKEN_TTL_S, token_type: 'Bearer' });
  } catch (e) {
    const err = e instanceof OAuthError ? e : new OAuthError(400, 'invalid_request', (e as Error).message);
    return Response.json({ error: err.code, error_description: err.message }, { status: err.status });
  }
}

/**
 * The label of a bearer token the Vertex face accepts: an emulator API key, or an unexpired
 * access token this endpoint issued with the cloud-platform scope. Undefined: not accepted.
 */
export function bearerLabel(
  token: string,
  state: EmulatorState,
): { label: string } | { refused: 'unauthenticated' | 'scope' } {
  const key = state.apiKeys.get(token);
  if (key !== undefined) return { label: key };
  const issued = vertexAuth(state).tokens.get(token);
  if (!issued || issued.expiresAt <= state.now()) return { refused: 'unauthenticated' };
  if (!issued.scopes.includes(CLOUD_PLATFORM_SCOPE)) return { refused: 'scope' };
  return { label: issued.label };
}

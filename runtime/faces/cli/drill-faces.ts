import { billedRegional, GEOS, modelIdFor } from '../../../adapters/bedrock/models.ts';
import { carriesRegionalPremium, regional, toVertex } from '../../../adapters/vertex/models.ts';
import type { PriceOptions } from '../../pricing/pricing.ts';

/**
 * The gateway faces the drill can send its runaway through, each in its own wire format, and how
 * each answers a refusal. The drill proves a ceiling on the face an operator's agents use: a
 * team on Claude-on-Bedrock wants to see `ServiceQuotaExceededException` come back on
 * `/bedrock/model/…/invoke`, not a 429 on `/v1/messages`.
 */

/** The providers (faces) `chokepoint drill --provider` knows. */
export const DRILL_PROVIDERS = ['anthropic', 'bedrock', 'vertex'] as const;
export type DrillProvider = (typeof DRILL_PROVIDERS)[number];

/** A parsed HTTP answer; headers lower-cased (Bedrock's error type travels in one). */
export interface Http {
  status: number;
  headers: Record<string, string>;
  body: Record<string, any>;
}

/** One Messages turn, as the loop builds it; each face wraps it in its own body. */
export interface Turn {
  max_tokens: number;
  system?: string;
  messages: Array<{ role: 'user' | 'assistant'; content: string }>;
}

/** A refusal as read from a face's error shape. */
export interface FaceRefusal {
  /** Chokepoint's machine-readable code (`chokepoint.code`), on every face. */
  code: string | null;
  message: string | null;
  /** The face's own name for the error: Anthropic's type, Bedrock's `x-amzn-errortype`, Google's status. */
  errorType: string | null;
}

export interface DrillFace {
  provider: DrillProvider;
  /** The face's route, as the report names it. */
  face: string;
  /** Bedrock profile prefix or Vertex location the calls name; undefined on the Anthropic face. */
  geo?: string;
  request(
    turn: Turn,
    key: string,
    session?: string,
  ): { path: string; body: unknown; headers: Record<string, string> };
  refusal(r: Http): FaceRefusal;
  /** The answer a budget refusal must be on this face: status and the face's error name. */
  budgetRefusal: { status: number; errorType: string };
  /** How the face's calls are priced (the unbounded estimate uses it). */
  prices: PriceOptions;
}

/** An unknown provider or a geography the face does not have: the operator's input is wrong. */
export class DrillFaceError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DrillFaceError';
  }
}

/** The Vertex project the drill's paths name: the gateway holds the real one, any name routes. */
const VERTEX_PROJECT = 'chokepoint-drill';

/**
 * The face for `provider`, calling `model` (a canonical Claude id) in `geo` (Bedrock: a profile
 * prefix, default `us`; Vertex: a location, default `global`).
 *
 * @example drillFace('bedrock', 'claude-sonnet-5-5').request(turn, key).path
 *   // '/bedrock/model/us.anthropic.claude-sonnet-5-5/invoke'
 * @throws DrillFaceError for an unknown provider, or a geography the face does not know.
 */
export function drillFace(provider: string, model: string, geo?: string): DrillFace {
  if (provider === 'anthropic') {
    if (geo !== undefined) throw new DrillFaceError('--geo: only the bedrock and vertex faces take one');
    return anthropicFace(model);
  }
  if (provider === 'bedrock') return bedrockFace(model, geo ?? 'us');
  if (provider === 'vertex') return vertexFace(model, geo ?? 'global');
  throw new DrillFaceError(
    `--provider: unknown provider ${JSON.stringify(provider)} (expected one of ${DRILL_PROVIDERS.join(', ')})`,
  );
}

const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);

function anthropicFace(model: string): DrillFace {
  return {
    provider: 'anthropic',
    face: 'POST /v1/messages',
    request: (turn, key, session) => ({
      path: '/v1/messages',
      body: { model, ...turn },
      headers: { 'x-api-key': key, ...(session ? { 'x-chokepoint-session': session } : {}) },
    }),
    refusal: (r) => ({
      code: str(r.body?.chokepoint?.code),
      message: str(r.body?.error?.message),
      errorType: str(r.body?.error?.type),
    }),
    budgetRefusal: { status: 429, errorType: 'rate_limit_error' },
    prices: {},
  };
}

function bedrockFace(model: string, geo: string): DrillFace {
  if (!(GEOS as readonly string[]).includes(geo)) {
    throw new DrillFaceError(
      `--geo: Bedrock has no profile prefix ${JSON.stringify(geo)} (expected one of ${GEOS.join(', ')})`,
    );
  }
  let id: string;
  try {
    id = modelIdFor(model, geo);
  } catch (err) {
    throw new DrillFaceError(`--model: ${(err as Error).message}`);
  }
  return {
    provider: 'bedrock',
    face: `POST /bedrock/model/${id}/invoke`,
    geo,
    request: (turn, key, session) => ({
      path: `/bedrock/model/${encodeURIComponent(id)}/invoke`,
      // Bedrock's body: the model is in the path, the version in the body.
      body: { anthropic_version: 'bedrock-2023-05-31', ...turn },
      headers: {
        authorization: `Bearer ${key}`,
        ...(session ? { 'x-chokepoint-session': session } : {}),
      },
    }),
    refusal: (r) => ({
      code: str(r.body?.chokepoint?.code),
      message: str(r.body?.message),
      errorType: str(r.headers['x-amzn-errortype']?.split(':')[0]),
    }),
    // Not a 429: AWS clients retry those, so a budget refusal is a quota error none retries.
    budgetRefusal: { status: 400, errorType: 'ServiceQuotaExceededException' },
    prices: { provider: 'bedrock', regional: billedRegional(model, geo) },
  };
}

function vertexFace(model: string, location: string): DrillFace {
  if (!/^[a-z][a-z0-9-]*$/.test(location)) {
    throw new DrillFaceError(
      `--geo: ${JSON.stringify(location)} is not a Vertex location (like global, us-east5, europe-west1)`,
    );
  }
  // A Vertex id (`claude-haiku-4-5@20251001`) is a valid path segment as it is: `@` is a pchar.
  const path = `/vertex/projects/${VERTEX_PROJECT}/locations/${location}/publishers/anthropic/models/${toVertex(model)}:rawPredict`;
  return {
    provider: 'vertex',
    face: `POST ${path}`,
    geo: location,
    request: (turn, key, session) => ({
      path,
      // Vertex's body: no model (the path names it), Vertex's version.
      body: { anthropic_version: 'vertex-2023-10-16', ...turn },
      headers: {
        authorization: `Bearer ${key}`,
        ...(session ? { 'x-chokepoint-session': session } : {}),
      },
    }),
    refusal: (r) => ({
      code: str(r.body?.chokepoint?.code),
      message: str(r.body?.error?.message),
      errorType: str(r.body?.error?.status),
    }),
    budgetRefusal: { status: 429, errorType: 'RESOURCE_EXHAUSTED' },
    prices: { provider: 'vertex', regional: regional(location) && carriesRegionalPremium(model) },
  };
}

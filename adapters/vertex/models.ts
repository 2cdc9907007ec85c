/**
 * Vertex AI's names for Claude: model ids, request paths, and which locations are regional.
 *
 * Vertex names a model in the URL, not the body. Models up to the 4.5 generation carry their
 * snapshot date after an `@` (`claude-haiku-4-5@20251001`); Anthropic's own id puts it after a
 * hyphen (`claude-haiku-4-5-20251001`). Models from 4.6 on have one plain id on both
 * (`claude-opus-5-5`). Sources: docs/research/vertex-2026-12.md.
 */

/** Canonical (Anthropic) alias → Vertex id, for the models whose Vertex id carries a date. */
const DATED: Readonly<Record<string, string>> = {
  'claude-opus-4-5': 'claude-opus-4-5@20251101',
  'claude-sonnet-4-5': 'claude-sonnet-4-5@20250929',
  'claude-haiku-4-5': 'claude-haiku-4-5@20251001',
  'claude-opus-4-1': 'claude-opus-4-1@20250805',
  'claude-opus-4-0': 'claude-opus-4@20250514',
  'claude-sonnet-4-0': 'claude-sonnet-4@20250514',
  'claude-3-5-haiku-latest': 'claude-3-5-haiku@20241022',
};

/** A Vertex id whose base name differs from Anthropic's (`claude-opus-4@…` is `claude-opus-4-…`). */
const DATE_AT = /^(.+)@(\d{8})$/;
const DATE_DASH = /^(.+)-(\d{8})$/;

/**
 * The canonical Anthropic id of a Vertex model id: `claude-haiku-4-5@20251001` →
 * `claude-haiku-4-5-20251001`; a plain id is returned as it is.
 */
export function toCanonical(vertexId: string): string {
  const m = DATE_AT.exec(vertexId);
  return m ? `${m[1]}-${m[2]}` : vertexId;
}

/**
 * The Vertex id of a canonical model: a dated id takes an `@` (`claude-haiku-4-5-20251001` →
 * `claude-haiku-4-5@20251001`), an alias of a dated Vertex model takes its snapshot
 * (`claude-haiku-4-5` → `claude-haiku-4-5@20251001`), anything else is passed as it is.
 * `overrides` (the provider's `models` option, canonical → Vertex id) wins.
 */
export function toVertex(canonical: string, overrides?: Readonly<Record<string, string>>): string {
  const own = overrides?.[canonical];
  if (own) return own;
  const dated = DATED[canonical];
  if (dated) return dated;
  const m = DATE_DASH.exec(canonical);
  return m ? `${m[1]}@${m[2]}` : canonical;
}

/** The methods Vertex serves on a publisher model. */
export const METHODS = ['rawPredict', 'streamRawPredict'] as const;
export type VertexMethod = (typeof METHODS)[number];

/** The model segment Vertex uses for token counting (`…/models/count-tokens:rawPredict`). */
export const COUNT_TOKENS_MODEL = 'count-tokens';

export interface VertexPath {
  project: string;
  location: string;
  /** The model as the URL names it (a Vertex id, or `count-tokens`). */
  model: string;
  method: VertexMethod;
}

/** A request path that is not a Vertex Claude call; `part` names the segment that is wrong. */
export class VertexPathError extends Error {
  constructor(
    readonly part: string,
    problem: string,
  ) {
    super(`${part}: ${problem}`);
    this.name = 'VertexPathError';
  }
}

const SEGMENT = /^[A-Za-z0-9][A-Za-z0-9._@-]*$/;

function segment(value: string | undefined, part: string): string {
  if (value === undefined || value === '') throw new VertexPathError(part, 'missing');
  let decoded: string;
  try {
    decoded = decodeURIComponent(value);
  } catch {
    throw new VertexPathError(part, `not a valid URL segment: ${JSON.stringify(value)}`);
  }
  if (!SEGMENT.test(decoded)) throw new VertexPathError(part, `not a valid name: ${JSON.stringify(decoded)}`);
  return decoded;
}

function literal(value: string | undefined, expected: string, part: string): void {
  if (value !== expected) {
    throw new VertexPathError(
      part,
      `expected ${JSON.stringify(expected)}, got ${JSON.stringify(value ?? '')}`,
    );
  }
}

/**
 * Parses `projects/{p}/locations/{l}/publishers/anthropic/models/{m}:{method}` (a leading `/`,
 * `v1/` and any prefix before `projects/` are skipped, so a full URL path works too).
 *
 * @example parseVertexPath('/v1/projects/p/locations/global/publishers/anthropic/models/claude-opus-5-5:rawPredict')
 *   // { project: 'p', location: 'global', model: 'claude-opus-5-5', method: 'rawPredict' }
 */
export function parseVertexPath(path: string): VertexPath {
  const clean = path.split('?')[0] ?? '';
  const at = clean.indexOf('projects/');
  if (at === -1) throw new VertexPathError('projects', 'the path does not name projects/{project}');
  const parts = clean.slice(at).split('/');
  if (parts.length !== 8) {
    throw new VertexPathError(
      'path',
      'expected projects/{project}/locations/{location}/publishers/anthropic/models/{model}:{method}',
    );
  }
  const project = segment(parts[1], 'project');
  literal(parts[2], 'locations', 'locations');
  const location = segment(parts[3], 'location');
  literal(parts[4], 'publishers', 'publishers');
  literal(parts[5], 'anthropic', 'publisher');
  literal(parts[6], 'models', 'models');
  // The SDK escapes `;` in the last segment; the method follows the model's last `:`.
  const last = (parts[7] ?? '').replace(/%3A/gi, ':');
  const colon = last.lastIndexOf(':');
  if (colon === -1)
    throw new VertexPathError('method', 'missing: expected {model}:rawPredict or :streamRawPredict');
  const model = segment(last.slice(0, colon), 'model');
  const method = last.slice(colon + 1);
  if (!(METHODS as readonly string[]).includes(method)) {
    throw new VertexPathError(
      'method',
      `expected rawPredict or streamRawPredict, got ${JSON.stringify(method)}`,
    );
  }
  return { project, location, model, method: method as VertexMethod };
}

/** Builds the path of a call (without the `/v1` version prefix). */
export function vertexPath(p: VertexPath): string {
  const e = encodeURIComponent;
  return `projects/${e(p.project)}/locations/${e(p.location)}/publishers/anthropic/models/${e(p.model)}:${p.method}`;
}

/**
 * True when a call to `location` is served on a regional endpoint (anything but `global`,
 * multi-region `us`/`eu` included). Vertex prices regional endpoints 10% above the global one
 * for the models released with the global/regional split — Claude Sonnet 4.5, Haiku 4.5,
 * Opus 4.5 and every later model ({@link carriesRegionalPremium}); older models cost the same
 * everywhere.
 */
export function regional(location: string): boolean {
  return location !== 'global';
}

/** Generations before the global/regional price split (Claude 3.x, Opus/Sonnet 4, Opus 4.1). */
const NO_PREMIUM = /^claude-(3-|opus-4-1|opus-4-0|opus-4-2025|opus-4@|sonnet-4-0|sonnet-4-2025|sonnet-4@)/;

/** True when the model's regional endpoints cost 1.1× its global one (canonical or Vertex id). */
export function carriesRegionalPremium(model: string): boolean {
  return !NO_PREMIUM.test(model);
}

/** The default host of a location: `https://{location}-aiplatform.googleapis.com`, global without a prefix. */
export function defaultHost(location: string): string {
  if (location === 'global') return 'https://aiplatform.googleapis.com';
  if (location === 'us' || location === 'eu') return `https://aiplatform.${location}.rep.googleapis.com`;
  return `https://${location}-aiplatform.googleapis.com`;
}

/**
 * Bedrock model ids ↔ canonical Anthropic model ids (docs/research/bedrock-2026-12.md §2).
 *
 * A Bedrock id is `[<geo>.]anthropic.<anthropic id>[-v<N>[:<M>]]`: the geo prefix names a
 * cross-Region inference profile (`us`, `eu`, `apac`, `jp`, `au`, `ca`, `us-gov`, or `global`),
 * none means the in-Region model; the version suffix exists on the models launched before
 * Opus 4.7 (`anthropic.claude-haiku-4-5-20251001-v1:0`, `anthropic.claude-opus-4-6-v1`), newer
 * ones have none (`anthropic.claude-opus-5-5`). ARNs of foundation models and system-defined
 * inference profiles carry such an id after their `/`.
 */

/** A geography: a cross-Region profile prefix, `global`, or undefined for the in-Region model. */
export type Geo = string | undefined;

/** Bedrock's geography prefixes of system-defined inference profiles. */
export const GEOS = ['us', 'eu', 'apac', 'jp', 'au', 'ca', 'us-gov', 'global'] as const;

export interface ParsedModelId {
  /** The canonical Anthropic model id (`claude-opus-5-5`, `claude-haiku-4-5-20251001`). */
  model: string;
  geo: Geo;
}

/** A model id that is not a Claude model on Bedrock, or whose model cannot be known. */
export class ModelIdError extends Error {
  constructor(
    readonly id: string,
    problem: string,
  ) {
    super(`Bedrock model id ${JSON.stringify(id)}: ${problem}`);
    this.name = 'ModelIdError';
  }
}

const ID = /^(?:(us-gov|us|eu|apac|jp|au|ca|global)\.)?anthropic\.(claude-[a-z0-9-]+?)(?:-v\d+(?::\d+)?)?$/;
const ARN = /^arn:aws[a-z-]*:bedrock:[a-z0-9-]*:\d*:(foundation-model|inference-profile)\/(.+)$/;

/**
 * Parses a Bedrock model id or ARN.
 *
 * @example parseModelId('us.anthropic.claude-opus-5-5') // { model: 'claude-opus-5-5', geo: 'us' }
 * @example parseModelId('anthropic.claude-haiku-4-5-20251001-v1:0')
 *   // { model: 'claude-haiku-4-5-20251001', geo: undefined }
 * @throws ModelIdError naming the id when it is no Claude model id (an application inference
 *   profile's ARN names no model: map it in `models`).
 */
export function parseModelId(id: string): ParsedModelId {
  let rest = id.trim();
  try {
    rest = decodeURIComponent(rest);
  } catch {
    throw new ModelIdError(id, 'not a valid URL-encoded id');
  }
  const arn = ARN.exec(rest);
  if (arn) rest = arn[2]!;
  else if (rest.startsWith('arn:')) {
    throw new ModelIdError(id, 'an ARN that names no model (an application inference profile?)');
  }
  const m = ID.exec(rest);
  if (!m) throw new ModelIdError(id, 'not an Anthropic Claude model id on Bedrock');
  if (arn?.[1] === 'foundation-model' && m[1])
    throw new ModelIdError(id, 'a foundation-model ARN with a geo');
  return { model: m[2]!, geo: m[1] };
}

/**
 * The Bedrock ids of models launched with a version suffix, by canonical id and alias (Bedrock's
 * model catalogue: research §2). Models from Opus 4.7 on have none.
 */
const VERSIONED: Record<string, string> = {
  'claude-opus-4-6': 'claude-opus-4-6-v1',
  'claude-opus-4-5-20251101': 'claude-opus-4-5-20251101-v1:0',
  'claude-opus-4-5': 'claude-opus-4-5-20251101-v1:0',
  'claude-sonnet-4-5-20250929': 'claude-sonnet-4-5-20250929-v1:0',
  'claude-sonnet-4-5': 'claude-sonnet-4-5-20250929-v1:0',
  'claude-haiku-4-5-20251001': 'claude-haiku-4-5-20251001-v1:0',
  'claude-haiku-4-5': 'claude-haiku-4-5-20251001-v1:0',
  'claude-opus-4-1-20250805': 'claude-opus-4-1-20250805-v1:0',
  'claude-opus-4-1': 'claude-opus-4-1-20250805-v1:0',
  'claude-opus-4-20250514': 'claude-opus-4-20250514-v1:0',
  'claude-opus-4-0': 'claude-opus-4-20250514-v1:0',
  'claude-sonnet-4-20250514': 'claude-sonnet-4-20250514-v1:0',
  'claude-sonnet-4-0': 'claude-sonnet-4-20250514-v1:0',
  'claude-3-5-haiku-20241022': 'claude-3-5-haiku-20241022-v1:0',
};

/**
 * Builds the Bedrock model id for a canonical model and geography. `overrides` (the config's
 * `models:` map, canonical → Bedrock id or ARN) wins; its value is used as given.
 *
 * @example modelIdFor('claude-opus-5-5', 'us') // 'us.anthropic.claude-opus-5-5'
 */
export function modelIdFor(model: string, geo: Geo, overrides?: Readonly<Record<string, string>>): string {
  const own = overrides?.[model];
  if (own) return own;
  if (!/^claude-[a-z0-9-]+$/.test(model)) {
    throw new ModelIdError(model, 'not a canonical Claude model id (claude-…)');
  }
  if (geo !== undefined && !(GEOS as readonly string[]).includes(geo)) {
    throw new ModelIdError(model, `unknown geography ${JSON.stringify(geo)} (known: ${GEOS.join(', ')})`);
  }
  const base = `anthropic.${VERSIONED[model] ?? model}`;
  return geo ? `${geo}.${base}` : base;
}

/** True unless the call runs on the global profile: a geographic or in-Region endpoint. */
export function regional(geo: Geo): boolean {
  return geo !== 'global';
}

/**
 * True when AWS prices `model` 10% higher on regional endpoints than on the global profile: the
 * models from the 4.5 generation on (Sonnet 4.5, Haiku 4.5, Opus 4.5 and every later model).
 * Older models (Opus 4.1, Opus 4, Sonnet 4, Haiku 3.5) have one price (research §4).
 */
export function regionalPremium(model: string): boolean {
  const m = /^claude-(?:opus|sonnet|haiku|fable|mythos)-(\d+)(?:-(\d)(?!\d))?/.exec(model);
  if (!m) return false;
  const generation = Number(m[1]) + (m[2] ? Number(m[2]) / 10 : 0);
  return generation >= 4.5;
}

/** Whether a call of `model` on `geo` is billed at the regional (1.1×) price. */
export function billedRegional(model: string, geo: Geo): boolean {
  return regional(geo) && regionalPremium(model);
}

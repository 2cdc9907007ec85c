/**
 * The system-defined inference profiles a region offers, shaped like Bedrock's control-plane
 * `ListInferenceProfiles` answer (`GET /inference-profiles?type=SYSTEM_DEFINED`), which Claude
 * Code asks for first in Bedrock mode. Shape: docs/research/bedrock-2026-12.md §5.
 */
import { modelIdFor } from './models.ts';

/** One `InferenceProfileSummary`. */
export interface InferenceProfileSummary {
  inferenceProfileName: string;
  description: string;
  createdAt: string;
  updatedAt: string;
  inferenceProfileArn: string;
  models: Array<{ modelArn: string }>;
  inferenceProfileId: string;
  status: 'ACTIVE';
  type: 'SYSTEM_DEFINED';
}

/** The geographic profiles reachable from a source region (the global one is added to all). */
export function geosOf(region: string): string[] {
  if (region.startsWith('us-gov-')) return ['us-gov'];
  if (region.startsWith('us-')) return ['us'];
  if (region.startsWith('ca-')) return ['ca', 'us'];
  if (region.startsWith('eu-')) return ['eu'];
  if (region === 'ap-northeast-1' || region === 'ap-northeast-3') return ['jp', 'apac'];
  if (region === 'ap-southeast-2' || region === 'ap-southeast-4') return ['au', 'apac'];
  if (region.startsWith('ap-')) return ['apac'];
  return [];
}

const GEO_NAME: Record<string, string> = {
  us: 'US',
  'us-gov': 'US-GOV',
  ca: 'CA',
  eu: 'EU',
  jp: 'JP',
  au: 'AU',
  apac: 'APAC',
  global: 'GLOBAL',
};

/** `claude-opus-5-5` → `Claude Opus 5.5`; `claude-haiku-4-5-20251001` → `Claude Haiku 4.5`. */
export function displayName(model: string): string {
  const parts = model.replace(/-\d{8}$/, '').split('-');
  const words: string[] = [];
  const nums: string[] = [];
  for (const p of parts) (/^\d+$/.test(p) ? nums : words).push(p);
  const name = words.map((w) => w.charAt(0).toUpperCase() + w.slice(1)).join(' ');
  return nums.length ? `${name} ${nums.join('.')}` : name;
}

/**
 * The `ListInferenceProfiles` answer for `models` (canonical ids) as seen from `region`: one
 * SYSTEM_DEFINED profile per model and geography (the region's own, and `global`).
 *
 * @example listInferenceProfiles(['claude-opus-5-5'], 'us-east-1').inferenceProfileSummaries[0]
 *   .inferenceProfileId // 'us.anthropic.claude-opus-5-5'
 */
export function listInferenceProfiles(
  models: readonly string[],
  region: string,
  opts: { accountId?: string; createdAt?: string } = {},
): { inferenceProfileSummaries: InferenceProfileSummary[] } {
  const account = opts.accountId ?? '000000000000';
  const at = opts.createdAt ?? '2026-01-01T00:00:00Z';
  const out: InferenceProfileSummary[] = [];
  for (const model of models) {
    const foundation = modelIdFor(model, undefined);
    for (const geo of [...geosOf(region), 'global']) {
      const id = modelIdFor(model, geo);
      const name = `${GEO_NAME[geo] ?? geo.toUpperCase()} Anthropic ${displayName(model)}`;
      out.push({
        inferenceProfileName: name,
        description: `Routes requests to Anthropic ${displayName(model)} ${geo === 'global' ? 'in commercial regions worldwide' : `in the ${GEO_NAME[geo]} geography`}.`,
        createdAt: at,
        updatedAt: at,
        inferenceProfileArn: `arn:aws:bedrock:${region}:${account}:inference-profile/${id}`,
        models: [{ modelArn: `arn:aws:bedrock:${region}::foundation-model/${foundation}` }],
        inferenceProfileId: id,
        status: 'ACTIVE',
        type: 'SYSTEM_DEFINED',
      });
    }
  }
  return { inferenceProfileSummaries: out };
}

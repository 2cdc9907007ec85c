/**
 * Per-model request rules of today's API, checked once the model is known (research §4, §7):
 * mid-conversation `role: "system"` messages, `speed`, `inference_geo`, `thinking`,
 * `output_config.effort`, sampling parameters and `context_management`. Returns the price
 * modifiers the call is served with (echoed in `usage`).
 *
 * Error wording: "`temperature` is deprecated for this model." is the API's text as quoted in
 * public bug reports (ComfyUI #13923, picoclaw #2939); "role 'system' is not supported on this
 * model" is the [3P] wording quoted in §7. The other messages name the field like the API's
 * validation errors do; their exact text was not found.
 */
import { type ModelInfo, reached } from './catalog.ts';
import { invalid } from './errors.ts';
import type { MessagesRequest } from './request.ts';

/** The beta header that unlocks fast mode on research-preview models (Opus 5). */
export const FAST_MODE_BETA = 'fast-mode-2026-02-01';
/** Extended batch output (300K) beta header. */
export const OUTPUT_300K_BETA = 'output-300k-2026-03-24';
const EFFORTS = ['low', 'medium', 'high', 'xhigh', 'max'];

export interface Served {
  readonly speed: 'standard' | 'fast';
  /** `usage.inference_geo`: "global"/"us" on 4.6+ models, null before (no data residency there). */
  readonly inferenceGeo: string | null;
  readonly serviceTier: 'standard' | 'batch';
  /** `thinking` display and whether a thinking block is produced. */
  readonly thinking?: { display: 'summarized' | 'omitted' };
  readonly contextManagement: boolean;
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

const hasBeta = (h: Headers, beta: string) =>
  (h.get('anthropic-beta') ?? '')
    .split(',')
    .map((s) => s.trim())
    .includes(beta);

function checkSystemMessages(req: MessagesRequest, model: ModelInfo): void {
  req.messages.forEach((m, i) => {
    if (m.role === 'system' && !model.midConversationSystem) {
      throw invalid(`messages.${i}.role: role 'system' is not supported on this model`);
    }
  });
}

function checkSpeed(req: MessagesRequest, model: ModelInfo, h: Headers, now: number, batch: boolean) {
  const speed = req.speed;
  if (speed === undefined || speed === null || speed === 'standard') return 'standard';
  if (speed !== 'fast') throw invalid(`speed: Input should be 'standard' or 'fast'`);
  // Batch-processing page (Aug-2026 text): `speed` is one of the parameters a batch refuses.
  if (batch) throw invalid('speed: fast mode is not available with the Message Batches API');
  const fast = model.fast;
  if (!fast) throw invalid(`speed: fast mode is not supported for model ${model.id}`);
  if (reached(fast.removedAt, now)) {
    // §4a: Opus 4.6 silently fell back to standard speed; Opus 4.7/4.8 reject the request.
    if (fast.afterRemoval === 'standard') return 'standard';
    throw invalid(`speed: fast mode is no longer available for model ${model.id}`);
  }
  if (fast.beta && !hasBeta(h, FAST_MODE_BETA)) {
    throw invalid(`speed: fast mode for ${model.id} requires the anthropic-beta header '${FAST_MODE_BETA}'`);
  }
  return 'fast';
}

function checkGeo(req: MessagesRequest, model: ModelInfo): string | null {
  const geo = req.inference_geo;
  // §4b: data residency exists on Opus/Sonnet 4.6 and later; earlier models answer 400 if sent.
  if (model.generation < 4.6) {
    if (geo !== undefined && geo !== null) {
      throw invalid(`inference_geo: inference_geo is not supported for model ${model.id}`);
    }
    return null;
  }
  if (geo === undefined || geo === null) return 'global'; // the workspace default (emulated: global)
  if (geo !== 'global' && geo !== 'us') throw invalid(`inference_geo: Input should be 'global' or 'us'`);
  return geo;
}

function checkThinking(req: MessagesRequest, model: ModelInfo): Served['thinking'] {
  const t = req.thinking;
  const effort = isObject(req.output_config) ? req.output_config.effort : undefined;
  if (effort !== undefined && effort !== null && !EFFORTS.includes(effort as string)) {
    throw invalid(`output_config.effort: Input should be 'low', 'medium', 'high', 'xhigh' or 'max'`);
  }
  if (t === undefined || t === null) return undefined;
  if (!isObject(t)) throw invalid('thinking: Input should be a valid dictionary or object');
  const display = t.display ?? 'summarized';
  // 'updates' is a beta display (§7, Fable 5.1+/Opus 5.5+); emulated like 'summarized'.
  if (!['summarized', 'omitted', 'updates'].includes(display as string)) {
    throw invalid(`thinking.${t.type}.display: Input should be 'summarized' or 'omitted'`);
  }
  const shown = display === 'omitted' ? 'omitted' : 'summarized';
  switch (t.type) {
    case 'adaptive':
      return { display: shown };
    case 'enabled':
      // §7: budget thinking returns 400 on Opus 4.7 and later (all 5.x).
      if (model.generation >= 4.7) {
        throw invalid(
          '"thinking.type.enabled" is not supported for this model. Use "thinking.type.adaptive" and "output_config.effort" to control thinking behavior.',
        );
      }
      return { display: shown };
    case 'disabled':
      if (model.thinkingAlwaysOn) {
        throw invalid(
          `thinking.type: 'disabled' is not supported for model ${model.id}; thinking is always on`,
        );
      }
      // §7: on Opus 5 thinking may be turned off only at effort ≤ high.
      if (model.id === 'claude-opus-5' && (effort === 'xhigh' || effort === 'max')) {
        throw invalid(
          `thinking.type: 'disabled' requires output_config.effort 'high' or lower on ${model.id}`,
        );
      }
      return undefined;
    case 'between_tools':
      // §7: Sonnet 5.5's replacement for `disabled`.
      if (model.id !== 'claude-sonnet-5-5') {
        throw invalid(`thinking.type: 'between_tools' is not supported for model ${model.id}`);
      }
      return undefined;
    default:
      throw invalid(
        `thinking: Input tag '${String(t.type)}' found using 'type' does not match any of the expected tags: 'adaptive', 'enabled', 'disabled'`,
      );
  }
}

function checkSampling(req: MessagesRequest, model: ModelInfo): void {
  // §7: non-default temperature / top_p / top_k are a 400 on Claude 4.7+ and all 5.x models.
  // Defaults taken as temperature 1 and top_p 1 (the documented ranges' neutral values); top_k
  // has no neutral value, so any top_k is refused.
  if (model.generation < 4.7) return;
  if (req.temperature !== undefined && req.temperature !== null && req.temperature !== 1) {
    throw invalid('`temperature` is deprecated for this model.');
  }
  if (req.top_p !== undefined && req.top_p !== null && req.top_p !== 1) {
    throw invalid('`top_p` is deprecated for this model.');
  }
  if (req.top_k !== undefined && req.top_k !== null) throw invalid('`top_k` is deprecated for this model.');
}

function checkContextManagement(req: MessagesRequest): boolean {
  const cm = req.context_management;
  if (cm === undefined || cm === null) return false;
  if (!isObject(cm)) throw invalid('context_management: Input should be a valid dictionary or object');
  if (cm.edits !== undefined && !Array.isArray(cm.edits)) {
    throw invalid('context_management.edits: Input should be a valid list');
  }
  for (const [i, e] of ((cm.edits as unknown[]) ?? []).entries()) {
    if (!isObject(e) || typeof e.type !== 'string')
      throw invalid(`context_management.edits.${i}.type: Field required`);
  }
  return true;
}

/** Checks the request against the model's rules; returns how the call is served. */
export function serveOptions(
  req: MessagesRequest,
  model: ModelInfo,
  h: Headers,
  now: number,
  mode: 'messages' | 'batch',
): Served {
  checkSystemMessages(req, model);
  checkSampling(req, model);
  const speed = checkSpeed(req, model, h, now, mode === 'batch');
  const inferenceGeo = checkGeo(req, model);
  const thinking = checkThinking(req, model);
  const contextManagement = checkContextManagement(req);
  if (mode === 'batch' && req.stream === true) {
    throw invalid('stream: streaming is not supported in the Message Batches API');
  }
  const limit =
    mode === 'batch' && model.batchMaxOutputTokens && hasBeta(h, OUTPUT_300K_BETA)
      ? model.batchMaxOutputTokens
      : model.maxOutputTokens;
  if (req.max_tokens > limit) {
    throw invalid(
      `max_tokens: ${req.max_tokens} > ${limit}, which is the maximum allowed number of output tokens for ${model.id}`,
    );
  }
  return {
    speed,
    inferenceGeo,
    serviceTier: mode === 'batch' ? 'batch' : 'standard',
    ...(thinking ? { thinking } : {}),
    contextManagement,
  };
}

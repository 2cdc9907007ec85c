/**
 * `POST /openai/v1/embeddings`: deterministic unit vectors (from a hash of each input), as float
 * arrays or base64 little-endian float32 (what the SDK asks for by default); `usage` counts the
 * input tokens, which is all an embedding is billed for. `GET /openai/v1/models` lists the face's
 * catalogue.
 */
import { createHash } from 'node:crypto';
import type { EmulatorState } from '../http.ts';
import { newId } from '../ids.ts';
import { textTokens } from '../tokens.ts';
import {
  authenticateOpenAI,
  badParam,
  errorForStatus,
  okHeaders,
  openaiError,
  readBody,
  requestIdOf,
  takeFault,
  unknownModel,
} from './http.ts';
import { OPENAI_MODELS, openaiModel } from './models.ts';

function inputsOf(input: unknown): Array<string | number[]> {
  if (typeof input === 'string') return [input];
  if (Array.isArray(input) && input.length > 0) {
    if (input.every((x) => typeof x === 'number')) return [input as number[]];
    if (
      input.every((x) => typeof x === 'string' || (Array.isArray(x) && x.every((n) => typeof n === 'number')))
    ) {
      return input as Array<string | number[]>;
    }
  }
  throw badParam(
    'input',
    "Invalid 'input': expected a string, an array of strings, or an array of token arrays.",
    'invalid_value',
  );
}

function vector(seed: string, dims: number): Float32Array {
  const v = new Float32Array(dims);
  let block = Buffer.alloc(0);
  let norm = 0;
  for (let i = 0; i < dims; i++) {
    if (i % 8 === 0) block = createHash('sha256').update(`${seed}\u0000${i}`).digest();
    const x = block.readInt32LE((i % 8) * 4) / 2 ** 31;
    v[i] = x;
    norm += x * x;
  }
  const s = 1 / Math.sqrt(norm || 1);
  for (let i = 0; i < dims; i++) v[i] = v[i]! * s;
  return v;
}

/** `POST /openai/v1/embeddings`. */
export async function embeddings(raw: Request, state: EmulatorState): Promise<Response> {
  const requestId = requestIdOf();
  try {
    const apiKey = authenticateOpenAI(raw.headers, state);
    const body = await readBody(raw);
    const fault = takeFault(state);
    if (fault?.status) throw errorForStatus(fault.status, fault.message);
    if (typeof body.model !== 'string') throw badParam('model', 'you must provide a model parameter');
    const model = openaiModel(body.model);
    if (model?.kind !== 'embedding') throw unknownModel(body.model);
    const inputs = inputsOf(body.input);
    const dims = body.dimensions ?? model.dimensions!;
    if (typeof dims !== 'number' || !Number.isInteger(dims) || dims < 1 || dims > model.dimensions!) {
      throw badParam(
        'dimensions',
        `Invalid 'dimensions': must be an integer from 1 to ${model.dimensions}.`,
        'invalid_value',
      );
    }
    const format = body.encoding_format ?? 'float';
    if (format !== 'float' && format !== 'base64') {
      throw badParam(
        'encoding_format',
        "Invalid 'encoding_format': expected 'float' or 'base64'.",
        'invalid_value',
      );
    }
    let tokens = 0;
    const data = inputs.map((x, index) => {
      tokens += typeof x === 'string' ? Math.max(1, textTokens(x)) : x.length;
      const v = vector(typeof x === 'string' ? x : x.join(','), dims);
      const embedding = format === 'base64' ? Buffer.from(v.buffer).toString('base64') : Array.from(v);
      return { object: 'embedding', index, embedding };
    });
    state.billing.add({
      id: newId('emb_'),
      provider: 'openai',
      requestId,
      clientRequestId: raw.headers.get('x-chokepoint-request-id') ?? undefined,
      at: state.now(),
      model,
      apiKey,
      usage: { input: tokens, cacheWrite5m: 0, cacheWrite1h: 0, cacheRead: 0, output: 0 },
      stream: false,
      aborted: false,
    });
    const payload = {
      object: 'list',
      data,
      model: model.id,
      usage: { prompt_tokens: tokens, total_tokens: tokens },
    };
    return new Response(JSON.stringify(payload), { headers: okHeaders(requestId, 'application/json') });
  } catch (e) {
    return openaiError(e, requestId);
  }
}

/** `GET /openai/v1/models` (and `/models/{id}`). */
export function listModels(raw: Request, state: EmulatorState, id?: string): Response {
  const requestId = requestIdOf();
  try {
    authenticateOpenAI(raw.headers, state);
    const json = (m: (typeof OPENAI_MODELS)[number]) => ({
      id: m.id,
      object: 'model',
      created: m.created,
      owned_by: 'system',
    });
    if (id !== undefined) {
      const m = openaiModel(id);
      if (!m) throw unknownModel(id);
      return new Response(JSON.stringify(json(m)), { headers: okHeaders(requestId, 'application/json') });
    }
    const payload = { object: 'list', data: OPENAI_MODELS.map(json) };
    return new Response(JSON.stringify(payload), { headers: okHeaders(requestId, 'application/json') });
  } catch (e) {
    return openaiError(e, requestId);
  }
}

/**
 * The Message Batches API (platform docs "Batch processing", Aug-2026 text; shapes from
 * @anthropic-ai/sdk 1.13 `MessageBatch`, `MessageBatchIndividualResponse`):
 *
 * - `POST /v1/messages/batches` `{requests: [{custom_id, params}]}` → a `message_batch`,
 *   `processing_status: "in_progress"`. `custom_id` must match `^[a-zA-Z0-9_-]{1,64}$` and be
 *   unique; at most 100,000 requests. Each `params` is validated *asynchronously*, as the docs say
 *   ("Validation of the params object for each message request is performed asynchronously, and
 *   validation errors are returned when processing of the entire batch has ended"): an invalid one
 *   becomes an `errored` result carrying the same error `/v1/messages` would answer.
 * - Processing is deterministic: the batch ends (every request run, billed at 50%, `usage.
 *   service_tier: "batch"`) the first time it is looked at once the clock has passed
 *   `created + batchDelayMs` (default 0), or on `POST /_emulator/batches/{id}/end`.
 * - `GET …/{id}` retrieve, `GET …` list (newest first, paginated), `GET …/{id}/results` JSONL,
 *   `POST …/{id}/cancel` (→ `canceling`; the batch then ends with its requests `canceled`, not
 *   billed), `DELETE …/{id}` (only once ended, per the SDK doc: "Message Batches can only be
 *   deleted once they've finished processing").
 *
 * Not found in the docs (emulator's choice): the status and wording of results-before-end,
 * cancel-after-end and delete-in-progress errors (400 invalid_request_error here), and the
 * results' content type.
 */
import { ApiError, errorForStatus, invalid } from './errors.ts';
import type { EmulatorState } from './http.ts';
import { newId } from './ids.ts';
import { prepareCall, runCall } from './messages.ts';
import { paginate } from './pages.ts';

const CUSTOM_ID = /^[a-zA-Z0-9_-]{1,64}$/;
const MAX_REQUESTS = 100_000;
const DAY_MS = 86_400_000;

type Result =
  | { type: 'succeeded'; message: Record<string, unknown> }
  | {
      type: 'errored';
      error: { type: 'error'; error: { type: string; message: string }; request_id: string };
    }
  | { type: 'canceled' }
  | { type: 'expired' };

interface Batch {
  readonly id: string;
  readonly createdAt: number;
  readonly requests: readonly { custom_id: string; params: unknown }[];
  readonly headers: Headers;
  readonly apiKey: string;
  readonly clientRequestId?: string;
  readonly origin: string;
  cancelAt?: number;
  endedAt?: number;
  results?: { custom_id: string; result: Result }[];
}

/** The batches an emulator holds, newest first. */
export class BatchStore {
  private readonly byId = new Map<string, Batch>();

  add(b: Batch): void {
    this.byId.set(b.id, b);
  }
  get(id: string): Batch {
    const b = this.byId.get(id);
    if (!b) throw new ApiError(404, 'not_found_error', `message_batch_id: ${id} not found`);
    return b;
  }
  delete(id: string): void {
    this.byId.delete(id);
  }
  all(): Batch[] {
    return [...this.byId.values()].reverse();
  }
  clear(): void {
    this.byId.clear();
  }
}

const iso = (t: number | undefined) => (t === undefined ? null : new Date(t).toISOString());

function counts(b: Batch) {
  const c = { processing: 0, succeeded: 0, errored: 0, canceled: 0, expired: 0 };
  if (!b.results) c.processing = b.requests.length;
  else for (const r of b.results) c[r.result.type]++;
  return c;
}

function batchJson(b: Batch) {
  const ended = b.endedAt !== undefined;
  return {
    id: b.id,
    type: 'message_batch',
    processing_status: ended ? 'ended' : b.cancelAt !== undefined ? 'canceling' : 'in_progress',
    request_counts: counts(b),
    ended_at: iso(b.endedAt),
    created_at: iso(b.createdAt),
    expires_at: iso(b.createdAt + DAY_MS),
    archived_at: null,
    cancel_initiated_at: iso(b.cancelAt),
    results_url: ended ? `${b.origin}/v1/messages/batches/${b.id}/results` : null,
  };
}

function errored(e: unknown): Result {
  const err = e instanceof ApiError ? e : errorForStatus(500);
  return {
    type: 'errored',
    error: { type: 'error', error: { type: err.type, message: err.message }, request_id: newId('req_011C') },
  };
}

/** Runs every request of a batch (or cancels them) and ends it. */
export function endBatch(b: Batch, state: EmulatorState): void {
  if (b.endedAt !== undefined) return;
  b.results = b.requests.map(({ custom_id, params }) => {
    if (b.cancelAt !== undefined) return { custom_id, result: { type: 'canceled' } };
    try {
      const call = prepareCall(params, b.headers, state, 'batch');
      if (call.spec?.error) throw errorForStatus(call.spec.error, call.spec.errorMessage);
      const requestId = newId('req_011C');
      const ran = runCall(call, state, { requestId, apiKey: b.apiKey, clientRequestId: b.clientRequestId });
      state.billing.add({
        ...ran.billing(ran.reply.outputTokens, false),
        batchId: b.id,
        customId: custom_id,
      });
      return { custom_id, result: { type: 'succeeded', message: ran.message } };
    } catch (e) {
      return { custom_id, result: errored(e) };
    }
  });
  b.endedAt = state.now();
}

/** Ends the batch if its time has come (or it is being canceled). */
function advance(b: Batch, state: EmulatorState): Batch {
  if (
    b.endedAt === undefined &&
    (b.cancelAt !== undefined || state.now() >= b.createdAt + state.batchDelayMs)
  ) {
    endBatch(b, state);
  }
  return b;
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** `POST /v1/messages/batches`. */
export function createBatch(body: unknown, raw: Request, apiKey: string, state: EmulatorState) {
  if (!isObject(body)) throw invalid('Request body must be a JSON object');
  const reqs = body.requests;
  if (reqs === undefined) throw invalid('requests: Field required');
  if (!Array.isArray(reqs)) throw invalid('requests: Input should be a valid list');
  if (reqs.length === 0) throw invalid('requests: List should have at least 1 item after validation, not 0');
  if (reqs.length > MAX_REQUESTS) throw invalid(`requests: List should have at most ${MAX_REQUESTS} items`);
  const seen = new Set<string>();
  const requests = reqs.map((r, i) => {
    if (!isObject(r)) throw invalid(`requests.${i}: Input should be a valid dictionary or object`);
    if (typeof r.custom_id !== 'string') throw invalid(`requests.${i}.custom_id: Field required`);
    if (!CUSTOM_ID.test(r.custom_id)) {
      throw invalid(`requests.${i}.custom_id: String should match pattern '^[a-zA-Z0-9_-]{1,64}$'`);
    }
    if (seen.has(r.custom_id))
      throw invalid(`requests.${i}.custom_id: custom_id must be unique within a batch`);
    seen.add(r.custom_id);
    if (!isObject(r.params)) throw invalid(`requests.${i}.params: Field required`);
    return { custom_id: r.custom_id, params: r.params };
  });
  const clientRequestId = raw.headers.get('x-chokepoint-request-id') ?? undefined;
  const batch: Batch = {
    id: newId('msgbatch_01'),
    createdAt: state.now(),
    requests,
    headers: new Headers(raw.headers),
    apiKey,
    ...(clientRequestId ? { clientRequestId } : {}),
    origin: new URL(raw.url).origin,
  };
  state.batches.add(batch);
  return batchJson(batch);
}

export const retrieveBatch = (id: string, state: EmulatorState) =>
  batchJson(advance(state.batches.get(id), state));

export const listBatches = (url: string, state: EmulatorState) =>
  paginate(
    state.batches.all().map((b) => batchJson(advance(b, state))),
    url,
  );

export function cancelBatch(id: string, state: EmulatorState) {
  const b = state.batches.get(id);
  if (b.endedAt !== undefined) throw invalid(`Batch ${id} has already ended and cannot be canceled`);
  b.cancelAt ??= state.now();
  return batchJson(b);
}

export function deleteBatch(id: string, state: EmulatorState) {
  const b = advance(state.batches.get(id), state);
  if (b.endedAt === undefined) {
    throw invalid(`Batch ${id} is still processing; cancel it and wait for it to end before deleting it`);
  }
  state.batches.delete(id);
  return { id, type: 'message_batch_deleted' };
}

/** `GET /v1/messages/batches/{id}/results`: one JSON line per request, in request order. */
export function batchResults(id: string, state: EmulatorState): string {
  const b = advance(state.batches.get(id), state);
  if (!b.results) throw invalid(`Batch ${id} is still in progress; results are available once it has ended`);
  return `${b.results.map((r) => JSON.stringify(r)).join('\n')}\n`;
}

/** `POST /_emulator/batches/{id}/end`: end a batch now, whatever the clock says. */
export function forceEnd(id: string, state: EmulatorState) {
  const b = state.batches.get(id);
  endBatch(b, state);
  return batchJson(b);
}

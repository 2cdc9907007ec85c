import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { type Provider, type ProviderResponse, readAll } from '../../../adapters/provider.ts';
import type { Services } from '../../compose.ts';
import { actualCost, callCost, worstCase } from '../../gateway/cost.ts';
import { checkBody, inspect } from '../../gateway/messages.ts';
import {
  budgetExhausted,
  invalidRequest,
  killed,
  Refusal,
  unavailable,
  unknownModel,
} from '../../gateway/refusal.ts';
import type { Sink } from '../../gateway/sink.ts';
import type { Identity } from '../../identity.ts';
import type { Micros } from '../../money.ts';
import type { BatchStore, OpenBatch } from '../../store/batches.ts';
import { EnforcementUnavailableError, type LedgerInput, NO_TOKENS } from '../../store/port.ts';

/**
 * Message Batches (`/v1/messages/batches`). A batch is admitted as a whole when it is created:
 * the sum of its requests' worst cases at the batch price (half of every class), reserved on every
 * budget for a day and an hour (the API ends a batch within 24 h). When the batch has ended — seen
 * by the client retrieving it or its results, or by this process's poller — its results are read
 * and each request is settled at its real batch price, one ledger entry each; requests that did
 * not succeed (errored, canceled, expired) are never billed and free their share. Cancel is
 * forwarded; what was cancelled is released when the batch ends.
 *
 * The batch → reservation record is kept in the backend (store/batches.ts), not in this process:
 * a restarted server or another replica that sees the batch end settles it from its real results.
 * Each request settles under its own derived reservation id, which closes once, so two processes
 * settling the same batch charge each request once.
 */
export interface BatchRequest {
  identity: Identity;
  requestId: string;
  method: string;
  path: string;
  req: IncomingMessage;
  sink: Sink;
  readBody: () => Promise<Buffer>;
}

/** An open batch in this process: the stored record, and its settlement when one is under way. */
interface Settling {
  batch: OpenBatch;
  settling?: Promise<void>;
}

const BATCH_TTL_MS = 25 * 3_600_000;
const POLL_MS = 30_000;

export class Batches {
  private readonly open = new Map<string, Settling>();
  private timer?: NodeJS.Timeout;
  private closed = false;

  constructor(private readonly rt: Services) {
    // Batches a previous process (or another replica) left open are polled here too.
    void this.store.list().then(
      (open) => {
        if (open.length) this.poll();
      },
      (err) => rt.log.warn('could not read the open message batches', { error: err }),
    );
  }

  private get store(): BatchStore {
    return this.rt.backend.batches;
  }

  /** The open batch with this id: this process's, or the backend's record of one. */
  private async find(id: string): Promise<Settling | undefined> {
    const mine = this.open.get(id);
    if (mine) return mine;
    const stored = await this.store.get(id);
    if (!stored) return undefined;
    const s = this.open.get(id) ?? { batch: stored };
    this.open.set(id, s);
    return s;
  }

  /** Message Batches are the provider's own API: passed through, where the provider has one. */
  private pass(
    method: string,
    path: string,
    body: Buffer | undefined,
    headers: Parameters<NonNullable<Provider['passthrough']>>[3],
    requestId?: string,
  ): Promise<ProviderResponse> {
    const provider = this.rt.provider;
    if (!provider.passthrough) {
      return Promise.reject(
        new Refusal('not_found', `not_found: the ${provider.kind} provider has no Message Batches API`),
      );
    }
    return provider.passthrough(method, path, body, headers, requestId);
  }

  async handle(c: BatchRequest): Promise<void> {
    const sub = c.path.slice('/v1/messages/batches'.length); // '', '/{id}', '/{id}/results', ...
    const query = c.req.url?.includes('?') ? c.req.url.slice(c.req.url.indexOf('?')) : '';
    if (c.method === 'POST' && sub === '') return this.create(c);
    const id = decodeURIComponent(sub.split('/')[1] ?? '');
    const batch = id ? await this.find(id) : undefined;
    const body = c.method === 'POST' ? await c.readBody() : undefined;
    const up = await this.pass(
      c.method,
      `v1/messages/batches${sub}${query}`,
      body,
      c.req.headers,
      c.requestId,
    );
    const buf = await readAll(up.body);
    // Settlement is durable before the client learns the batch has ended (or sees its results).
    if (batch && up.status === 200 && (sub.endsWith('/results') || ended(buf))) await this.settle(batch);
    c.sink.head(up.status, {
      'content-type': String(up.headers['content-type'] ?? 'application/json'),
      'request-id': c.requestId,
    });
    c.sink.chunk(sub.endsWith('/results') ? buf : throughUs(buf, c.req));
    c.sink.end();
  }

  private async create(c: BatchRequest): Promise<void> {
    const raw = await c.readBody();
    let json: { requests?: unknown };
    try {
      json = JSON.parse(raw.toString('utf8'));
    } catch {
      throw invalidRequest('body', 'not valid JSON');
    }
    const requests = json?.requests;
    if (!Array.isArray(requests) || requests.length === 0) {
      throw invalidRequest('requests', 'required: a non-empty array of {custom_id, params}');
    }
    const rt = this.rt;
    const at = rt.now();
    let amount: Micros = 0;
    const models: Record<string, string> = {};
    let rewritten = false;
    for (let i = 0; i < requests.length; i++) {
      const r = requests[i] as { custom_id?: unknown; params?: unknown } | null;
      if (typeof r?.custom_id !== 'string' || r.custom_id === '') {
        throw invalidRequest(`requests.${i}.custom_id`, 'required: a string naming the request');
      }
      let body: ReturnType<typeof checkBody>;
      try {
        body = checkBody(r.params);
      } catch (err) {
        const e = err as { details?: { field?: string }; message: string };
        throw invalidRequest(`requests.${i}.params.${e.details?.field ?? ''}`, e.message);
      }
      const route = await rt.router.route(body.model, c.identity, () => rt.utilisation(c.identity));
      if (route.model !== body.model) {
        body.model = route.model;
        rewritten = true;
      }
      const entry = rt.prices.lookup(route.model, at);
      if (!entry) throw unknownModel(route.model);
      const facts = inspect(body);
      const cost = callCost(rt.prices, body, route.model, entry, facts, at, rt.config.gateway.inferenceGeo);
      cost.options.batch = true;
      amount += worstCase(rt.prices, route.model, facts, cost, body.max_tokens, at);
      models[r.custom_id] = route.model;
    }
    let admission: Awaited<ReturnType<Services['store']['admit']>>;
    try {
      admission = await rt.store.admit({
        identity: c.identity,
        amount,
        requestId: c.requestId,
        kind: 'model',
        name: `batch:${[...new Set(Object.values(models))].join(',')}`,
        ttlMs: BATCH_TTL_MS,
      });
    } catch (err) {
      if (err instanceof EnforcementUnavailableError) throw unavailable(err.message);
      throw err;
    }
    if (!admission.ok) {
      throw admission.refusal.code === 'killed'
        ? killed(admission.refusal.kill)
        : budgetExhausted(admission.refusal.budget, admission.refusal.amount, rt.now());
    }
    const reservation = admission.reservation;
    const payload = rewritten ? Buffer.from(JSON.stringify({ ...json, requests })) : raw;
    let up: ProviderResponse;
    let buf: Buffer;
    try {
      up = await this.pass('POST', 'v1/messages/batches', payload, c.req.headers, c.requestId);
      buf = await readAll(up.body);
    } catch (err) {
      await rt.releaseSafely(
        reservation,
        this.entry(c.identity, c.requestId, 'batch', 'error', 'upstream_network'),
      );
      throw unavailable(`the provider could not be reached (${(err as Error).message})`);
    }
    const id = up.status === 200 ? batchId(buf) : undefined;
    if (!id) {
      await rt.releaseSafely(
        reservation,
        this.entry(c.identity, c.requestId, 'batch', 'error', `http_${up.status}`),
      );
    } else {
      const batch: OpenBatch = { id, identity: c.identity, reservation, models };
      this.open.set(id, { batch });
      // Without the record a restart would leave the batch to expire at its worst case (which
      // reconciliation corrects): the answer still goes out, the failure is logged.
      await this.store
        .put(batch)
        .catch((err) =>
          rt.log.error('could not keep a message batch: it settles at expiry', { error: err, batch: id }),
        );
      this.poll();
    }
    c.sink.head(up.status, { 'content-type': 'application/json', 'request-id': c.requestId });
    c.sink.chunk(throughUs(buf, c.req));
    c.sink.end();
  }

  /** Reads an ended batch's results and settles each request once (concurrent callers share it). */
  private settle(s: Settling): Promise<void> {
    s.settling ??= this.settleNow(s.batch).catch((err) => {
      s.settling = undefined;
      throw err;
    });
    return s.settling;
  }

  private async settleNow(batch: OpenBatch): Promise<void> {
    const rt = this.rt;
    if (batch.reservation.expiresAt <= rt.now()) {
      // Expired before its results were read: its worst case was charged then, and stands (until
      // reconciliation corrects it) — settling the requests now would charge them a second time.
      rt.log.warn('a message batch ended after its reservation expired: its worst case stands', {
        batch: batch.id,
        reservation: batch.reservation.id,
      });
      await this.forget(batch.id);
      return;
    }
    const up = await this.pass('GET', `v1/messages/batches/${batch.id}/results`, undefined, {});
    const buf = await readAll(up.body);
    if (up.status !== 200) throw new Error(`batch ${batch.id} results answered ${up.status}`);
    const billed: LedgerInput[] = [];
    const unbilled: LedgerInput[] = [];
    for (const line of buf.toString('utf8').split('\n')) {
      if (!line.trim()) continue;
      const r = JSON.parse(line) as {
        custom_id: string;
        result?: { type?: string; message?: { model?: string } };
      };
      const model = batch.models[r.custom_id] ?? r.result?.message?.model ?? 'unknown';
      const requestId = `${batch.id}:${r.custom_id}`;
      if (r.result?.type !== 'succeeded') {
        unbilled.push(this.entry(batch.identity, requestId, model, 'error', r.result?.type ?? 'unknown'));
        continue;
      }
      const b = rt.provider.usageOf(r.result.message);
      b.options.batch = true;
      let cost: Micros;
      try {
        cost = actualCost(rt.prices, model, b, rt.now());
      } catch {
        cost = batch.reservation.amount; // never zero: reconciliation corrects it
      }
      billed.push({ ...this.entry(batch.identity, requestId, model, 'ok'), tokens: b.tokens, cost });
    }
    // Each billed request is charged while the batch's reservation still holds its share (so no
    // other call can take the room meanwhile); the reservation itself closes last. Results come in
    // any order: sorted by custom_id, every process (a restarted one, another replica) settles each
    // request under the same id, which closes once, and closes the reservation with the same one.
    billed.sort(byRequest);
    unbilled.sort(byRequest);
    const last = billed.pop() ?? unbilled.shift();
    const res = batch.reservation.id;
    for (const e of billed) await rt.store.settle(requestReservation(res, batch.id, e.requestId), e);
    for (const e of unbilled) await rt.store.release(requestReservation(res, batch.id, e.requestId), e);
    if (last && last.cost > 0)
      await rt.settleSafely(batch.reservation, { ...last, reserved: batch.reservation.amount });
    else
      await rt.releaseSafely(
        batch.reservation,
        last ?? this.entry(batch.identity, batch.id, 'batch', 'error', 'empty'),
      );
    await this.forget(batch.id);
  }

  /** The batch is settled (or its worst case stands): no process needs its record any more. */
  private async forget(id: string): Promise<void> {
    this.open.delete(id);
    await this.store
      .delete(id)
      .catch((err) =>
        this.rt.log.warn('could not forget a settled message batch', { error: err, batch: id }),
      );
  }

  private entry(
    identity: Identity,
    requestId: string,
    name: string,
    outcome: 'ok' | 'error',
    code?: string,
  ): LedgerInput {
    return {
      requestId,
      identity,
      kind: 'model',
      name,
      tokens: { ...NO_TOKENS },
      reserved: 0,
      cost: 0,
      latencyMs: 0,
      outcome,
      ...(code ? { code } : {}),
    };
  }

  /** While batches are open, ask the provider about them every 30 s and settle those that ended. */
  private poll(): void {
    if (this.timer || this.closed) return;
    this.timer = setInterval(() => void this.tick(), POLL_MS);
    this.timer.unref();
  }

  /** Every batch open in the backend (this process's and others'), asked about once. */
  private async tick(): Promise<void> {
    let open: OpenBatch[];
    try {
      open = await this.store.list();
    } catch (err) {
      this.rt.log.warn('could not read the open message batches', { error: err });
      return;
    }
    if (open.length === 0) {
      clearInterval(this.timer);
      this.timer = undefined;
      return;
    }
    for (const b of open) {
      const s = this.open.get(b.id) ?? { batch: b };
      this.open.set(b.id, s);
      void this.check(s);
    }
  }

  private async check(s: Settling): Promise<void> {
    const batch = s.batch;
    try {
      const up = await this.pass('GET', `v1/messages/batches/${batch.id}`, undefined, {});
      const buf = await readAll(up.body);
      if (up.status === 200 && ended(buf)) await this.settle(s);
    } catch (err) {
      this.rt.log.warn('could not check a message batch', { error: err, batch: batch.id });
    }
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
  }
}

/**
 * The provider's `results_url` points at the provider, where a client would fetch the results
 * with its own key, bypassing the gateway (and settlement): it is rewritten to this gateway.
 */
function throughUs(buf: Buffer, req: IncomingMessage): Buffer {
  if (!buf.includes('"results_url"')) return buf;
  let json: unknown;
  try {
    json = JSON.parse(buf.toString('utf8'));
  } catch {
    return buf;
  }
  const host = req.headers.host ?? 'localhost';
  const proto = (req.socket as { encrypted?: boolean }).encrypted ? 'https' : 'http';
  const fix = (b: Record<string, unknown>) => {
    if (typeof b?.results_url === 'string' && typeof b.id === 'string') {
      b.results_url = `${proto}://${host}/v1/messages/batches/${encodeURIComponent(b.id)}/results`;
    }
  };
  const j = json as { data?: unknown[] } & Record<string, unknown>;
  if (Array.isArray(j.data)) for (const b of j.data) fix(b as Record<string, unknown>);
  else fix(j);
  return Buffer.from(JSON.stringify(json));
}

const byRequest = (a: LedgerInput, b: LedgerInput) =>
  a.requestId < b.requestId ? -1 : a.requestId > b.requestId ? 1 : 0;

/** The id one request of a batch settles under: the batch's reservation and its custom_id. */
function requestReservation(reservationId: string, batchId: string, requestId: string): string {
  const custom = requestId.slice(batchId.length + 1);
  const safe = /^[\w-]{1,64}$/.test(custom)
    ? custom
    : createHash('sha256').update(custom).digest('hex').slice(0, 24);
  return `${reservationId}.${safe}`;
}

function ended(buf: Buffer): boolean {
  try {
    return (JSON.parse(buf.toString('utf8')) as { processing_status?: string }).processing_status === 'ended';
  } catch {
    return false;
  }
}

function batchId(buf: Buffer): string | undefined {
  try {
    const id = (JSON.parse(buf.toString('utf8')) as { id?: unknown }).id;
    return typeof id === 'string' ? id : undefined;
  } catch {
    return undefined;
  }
}

// long: the one class that admits from budget leases; its parts (the fast path, grants, the batched
// steps, upkeep, revocation across replicas) share the same few maps and read best together.
import type { Scope } from '../identity.ts';
import { newId } from '../ids.ts';
import type { Micros } from '../money.ts';
import { ForwardingMoneyStore } from './forwarding.ts';
import { LeaseBatches } from './lease-batches.ts';
import {
  admitRecord,
  callEntryId,
  FileJournal,
  type JournalRecord,
  type LeaseJournal,
  MEMORY_JOURNAL,
  recoverJournals,
} from './lease-journal.ts';
import { LEDGER_JSON } from './lease-ops.ts';
import {
  LEASE_DEFAULTS,
  type LeaseDeps,
  type LeaseOptions,
  type LeaseStats,
  upkeepEveryMs,
} from './lease-options.ts';
import { type LeaseChange, LeasePeers } from './lease-peers.ts';
import { NearCeiling } from './near-ceiling.ts';
import {
  type Actor,
  type Admission,
  type AdmitRequest,
  type Budget,
  EnforcementUnavailableError,
  type KillSwitch,
  type LeaseOp,
  type LedgerEntry,
  type LedgerInput,
  type MoneyStore,
} from './port.ts';
import { identityScopes, scopesKey, settledEntry } from './records.ts';
import { SliceSizes } from './slice-sizes.ts';

export { LEASE_DEFAULTS, type LeaseDeps, type LeaseOptions, type LeaseStats, upkeepEveryMs };

interface Lease {
  /** The store's reservation id. */
  id: string;
  key: string;
  scopes: Scope[];
  /** What the store holds for it, less the charges already sent to it. */
  held: Micros;
  /** The worst cases of the calls admitted from it and not yet settled. */
  inflight: Micros;
  calls: number;
  seq: number;
  expiresAt: number;
  lastUsed: number;
  grantedAt: number;
  /** No new calls: superseded by a newer slice, or revoked. */
  retired: boolean;
}

interface Call {
  lease: Lease;
  amount: Micros;
  /** Its journal record (written again when the journal is compacted). */
  rec: Extract<JournalRecord, { t: 'a' }>;
}

/**
 * Budget leases: admission off the per-call critical path, as quota servers do it.
 *
 * The first call of an identity (its scopes: global, team, env, seat, workflow, run, provider)
 * reserves a *slice* in one store step — an ordinary reservation on every budget of the identity,
 * larger than the call (admit's `lease`) — and the calls after it are admitted from the slice in
 * memory. Each call is written to the lease journal (lease-journal.ts) before it is forwarded, and
 * its cost before its answer completes; what calls cost reaches the store in batches every `shipMs`
 * (`leaseOps`, each call charged once however often its step is sent). The store counts a
 * slice as reserved, so no budget can be passed: zero overshoot stays exact. A slice is at most the
 * tightest budget's room over `share`, so near a ceiling slices shrink to one call's worst case —
 * today's per-call admission, exact at the edge.
 *
 * - A process that dies leaves its journal: the next process on its data directory charges each
 *   call it had in flight its worst case (one `expired` entry per call, which reconciliation
 *   corrects), ships what was settled, and returns its slices. A process that never comes back
 *   leaves its slices to expire (`ttlMs`, renewed while alive), charged everything they held, as an
 *   expired reservation is — never zero; those `expired` entries say `lease:` in the request id and
 *   reconciliation leaves them as charged.
 * - Kill switches: a kill made here applies here at once and is announced to every replica on the
 *   broadcast; it returns when each live replica acknowledged, or after `validityMs` — the longest a
 *   replica admits from memory without having read the kill switches from the store. A replica that
 *   cannot read them stops admitting from memory (and a grant checks kills in the store, atomically).
 * - A batch that fails (store down) is sent again, charges and all (a call is charged once); nothing
 *   is admitted from memory until the store answers again. What a failed batch freed is freed by
 *   its lease's close.
 *
 * Calls that do not fit a lease go to the store as before: a Message Batch (`ttlMs`), a call under
 * rate limits (its units are reserved per call, in the same atomic step as its money), a workflow
 * run's call (see admit), and anything already asking for a lease.
 */
export class LeasedMoneyStore extends ForwardingMoneyStore {
  readonly replica = newId('rep');
  readonly stats: LeaseStats = { grants: 0, fromMemory: 0, batches: 0, steps: 0, returned: 0, storeCalls: 0 };
  private readonly current = new Map<string, Lease>();
  private readonly open = new Map<string, Lease>();
  private readonly calls = new Map<string, Call>();
  /** Calls admitted per call whose admission is journaled: their settlement is batched too. */
  private readonly singles = new Map<string, Call['rec']>();
  private readonly granting = new Map<string, Promise<unknown>>();
  /** When each identity last asked for a slice (forgotten after idleMs). */
  private readonly seen = new Map<string, number>();
  private readonly sizes = new SliceSizes();
  /** Budgets that refused lately, here or at a peer, and when slack on them was asked for. */
  private readonly near: NearCeiling;
  private kills = new Map<Scope, KillSwitch>();
  private validUntil = Number.NEGATIVE_INFINITY;
  private refreshing: Promise<void> | undefined;
  private readonly batches: LeaseBatches<Lease>;
  private readonly journal: LeaseJournal;
  /** The other replicas (none without a broadcast). */
  private readonly peers: LeasePeers | undefined;
  private readonly timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    store: MoneyStore,
    private readonly o: LeaseOptions,
    private readonly deps: LeaseDeps,
  ) {
    super(store);
    this.near = new NearCeiling(deps.now, upkeepEveryMs(o));
    this.journal = deps.journalDir ? new FileJournal(deps.journalDir, this.replica) : MEMORY_JOURNAL;
    this.batches = new LeaseBatches<Lease>({
      store,
      log: deps.log,
      shipMs: o.shipMs,
      manual: deps.upkeep === 'manual',
      sent: (steps) => {
        this.stats.batches++;
        this.stats.storeCalls++;
        this.stats.steps += steps;
      },
      closed: (lease) => this.forget(lease),
      written: () => this.journal.shipped(() => this.live()),
      failed: () => {
        this.validUntil = Number.NEGATIVE_INFINITY;
      },
    });
    if (deps.broadcast) {
      const o = { validityMs: this.o.validityMs, now: deps.now };
      this.peers = new LeasePeers(deps.broadcast, this.replica, o, (c) => this.applyChange(c), this.store);
    }
    if (deps.upkeep === 'manual') return;
    this.timer = setInterval(() => void this.upkeep(), upkeepEveryMs(o));
    this.timer.unref();
  }

  /** Runs upkeep once, now: what the timer does every `upkeepEveryMs` (`upkeep: 'manual'` only needs it). */
  tick(): Promise<void> {
    return this.upkeep();
  }

  /** Reads the kill switches and joins the broadcast: call once before use. */
  async start(): Promise<this> {
    // What processes that died on this data directory left in flight, charged and returned first.
    if (this.deps.journalDir) await recoverJournals(this.store, this.deps.journalDir, this.deps);
    await this.refresh();
    await this.peers?.join();
    return this;
  }

  // ---- admission ----------------------------------------------------------------------------

  override admit(req: AdmitRequest): Promise<Admission> {
    // Most calls: a fresh view of the kill switches and a slice with room — admitted from memory
    // with no async step of its own (the journal's write is the one promise). Anything else, and
    // any doubt, takes the whole path below.
    try {
      if (
        req.ttlMs === undefined &&
        !req.lease &&
        !req.rates?.length &&
        req.identity.run === undefined &&
        !this.closed &&
        this.deps.now() < this.validUntil &&
        this.store.isUp()
      ) {
        const scopes = identityScopes(req.identity);
        let lease: Lease | undefined;
        if (!scopes.some((s) => this.kills.has(s))) lease = this.current.get(scopesKey(scopes));
        if (lease && !lease.retired && lease.held - lease.inflight >= req.amount) {
          this.stats.fromMemory++;
          return this.take(lease, req);
        }
      }
    } catch (err) {
      return Promise.reject(err);
    }
    return this.admitAny(req);
  }

  private async admitAny(req: AdmitRequest): Promise<Admission> {
    // Admitted per call: a Message Batch's day-long hold; calls under rate limits (their units are
    // reserved per call in the store's one atomic admission); and workflow runs — a run's spend box
    // is small, its calls one at a time, and a run adopted by another worker expires its own
    // reservations there (expireNow), which a slice shared by the run's calls would over-charge.
    if (req.ttlMs !== undefined || req.lease || req.rates?.length || req.identity.run !== undefined) {
      return this.direct(() => this.store.admit(req));
    }
    if (this.closed) throw new EnforcementUnavailableError('the money store is closed');
    const scopes = identityScopes(req.identity);
    // Memory admits only while every settlement can be written and the kill switches are fresh.
    if (!this.store.isUp()) return this.direct(() => this.store.admit(req));
    if (this.deps.now() >= this.validUntil) await this.refresh();
    for (const s of scopes) {
      const kill = this.kills.get(s);
      if (kill) return { ok: false, refusal: { code: 'killed', kill } };
    }
    const key = scopesKey(scopes);
    for (;;) {
      const lease = this.current.get(key);
      if (lease && !lease.retired && lease.held - lease.inflight >= req.amount) {
        this.stats.fromMemory++;
        return this.take(lease, req);
      }
      const busy = this.granting.get(key);
      if (!busy) break;
      await busy.catch(() => {});
    }
    // An identity that called less than idleMs ago gets a slice; one calling now and then is
    // admitted per call (a slice for one call would cost a grant, a return and an upkeep).
    const now = this.deps.now();
    const last = this.seen.get(key);
    this.seen.set(key, now);
    if (last === undefined || now - last > this.o.idleMs) return this.single(req);
    const grant = this.grant(req, key, scopes);
    this.granting.set(key, grant);
    try {
      return await grant;
    } finally {
      this.granting.delete(key);
    }
  }

  private async grant(req: AdmitRequest, key: string, scopes: Scope[]): Promise<Admission> {
    const upTo = Math.min(
      this.o.maxLease,
      req.amount * this.o.callsPerLease * this.sizes.next(key, this.current.get(key), this.deps.now()),
    );
    const ask = (): Promise<Admission> =>
      this.direct(() =>
        this.store.admit({
          ...req,
          requestId: `lease:${req.requestId ?? ''}`,
          lease: { upTo, share: this.o.share },
          // Held for at least `ttlMs` from the grant, not only from its first renewal.
          ...(this.deps.reservationTtlMs !== undefined
            ? { ttlMs: Math.max(this.o.ttlMs, this.deps.reservationTtlMs) }
            : {}),
        }),
      );
    const a = await this.retryRefused(ask);
    if (!a.ok) {
      if (a.refusal.code === 'killed') this.applyKill(a.refusal.kill);
      return a;
    }
    this.stats.grants++;
    const now = this.deps.now();
    const lease: Lease = {
      id: a.reservation.id,
      key,
      scopes,
      held: a.reservation.amount,
      inflight: 0,
      calls: 0,
      seq: 0,
      expiresAt: a.reservation.expiresAt,
      lastUsed: now,
      grantedAt: now,
      retired: false,
    };
    const before = this.current.get(key);
    this.current.set(key, lease);
    this.open.set(lease.id, lease);
    if (before) this.retire(before);
    // A kill that arrived while the grant was on its way: the slice goes back unused.
    if (scopes.some((s) => this.kills.has(s))) this.retire(lease);
    return this.take(lease, req);
  }

  /**
   * A call admitted per call (its identity called no more than once in idleMs): its own reservation
   * in the store, journaled like a leased call so its settlement rides the next batch (charge and
   * close, the same as settle) — one store step per such call, not two. If the journal cannot take
   * it, it is settled per call as before.
   */
  private async single(req: AdmitRequest): Promise<Admission> {
    const a = await this.retryRefused(() => this.direct(() => this.store.admit(req)));
    if (!a.ok) return a;
    const r = a.reservation;
    const rec = admitRecord(r.id, '0', req, this.deps.now());
    try {
      await this.journal.append(rec);
      this.singles.set(r.id, rec);
    } catch (err) {
      this.deps.log.warn('the lease journal refused a call: it is settled per call', { error: err });
    }
    return a;
  }

  /**
   * Asks; when a budget refuses, what this process and every other holds on it may be what refused
   * — slices, and settlements not yet shipped (each holds its call's worst case): they go back, every
   * replica's before it acknowledges, and it asks once more, against what is really left.
   */
  private async retryRefused(ask: () => Promise<Admission>): Promise<Admission> {
    const a = await ask();
    if (a.ok || a.refusal.code !== 'budget_exhausted') return a;
    const scope = a.refusal.budget.scope;
    this.near.refused(scope);
    const queued = this.batches.queue.length > 0 || this.batches.shipping !== undefined;
    const [here, peers] = await Promise.all([this.giveBack(scope), this.askSlack(scope), this.ship()]);
    return here > 0 || peers || queued ? ask() : a;
  }

  /** A call from `lease`, admitted once its journal record is durable. */
  private take(lease: Lease, req: AdmitRequest): Promise<Admission> {
    const amount = req.amount;
    lease.inflight += amount;
    lease.calls++;
    const at = this.deps.now();
    lease.lastUsed = at;
    const c = String(++lease.seq);
    const id = `${lease.id}:${c}`;
    const rec = admitRecord(lease.id, c, req, at);
    this.calls.set(id, { lease, amount, rec });
    const admitted: Admission = {
      ok: true,
      reservation: { id, amount, scopes: lease.scopes, createdAt: at, expiresAt: lease.expiresAt },
    };
    let durable: Promise<void>;
    try {
      durable = this.journal.append(rec);
    } catch (err) {
      durable = Promise.reject(err);
    }
    return durable.then(
      () => admitted,
      (err) => {
        // Not durable, so not admitted: the slice (and its number, if still the last) is the next call's.
        this.calls.delete(id);
        lease.inflight -= amount;
        lease.calls--;
        if (lease.seq === Number(c)) lease.seq--;
        throw err;
      },
    );
  }

  /** A call into the store that the lease path counts. */
  private direct<T>(fn: () => Promise<T>): Promise<T> {
    this.stats.storeCalls++;
    return fn();
  }

  // ---- settlement ---------------------------------------------------------------------------

  // Not async themselves: an async function returning finish's promise would cost a resolution
  // step more per call.
  override settle(reservationId: string, entry: LedgerInput): Promise<LedgerEntry> {
    return this.finish(reservationId, entry, () => this.store.settle(reservationId, entry));
  }

  override release(reservationId: string, entry: LedgerInput): Promise<LedgerEntry> {
    return this.finish(reservationId, entry, () => this.store.release(reservationId, entry));
  }

  private async finish(
    reservationId: string,
    entry: LedgerInput,
    direct: () => Promise<LedgerEntry>,
  ): Promise<LedgerEntry> {
    const single = this.singles.get(reservationId);
    if (single) return this.finishSingle(single, entry, direct);
    const call = this.calls.get(reservationId);
    if (!call) {
      const at = reservationId.lastIndexOf(':');
      if (at < 0 || !reservationId.startsWith('res_')) return this.direct(direct);
      // A call of a lease this process no longer knows (a settlement replayed after a restart):
      // charged on its lease if still open, to the identity if not, once (its journal may have
      // charged it already); nothing if the lease expired.
      const leaseId = reservationId.slice(0, at);
      const c = reservationId.slice(at + 1);
      const [r] = await this.direct(() =>
        this.store.leaseOps([
          { reservationId: leaseId, call: c, entry: { ...entry, id: entry.id ?? callEntryId(leaseId, c) } },
        ]),
      );
      return r!.entry!;
    }
    const { lease, amount, rec } = call;
    // Finished once: the journal's line, the step to the store and the caller share it.
    const done = settledEntry(entry, callEntryId(lease.id, rec.c), lease.id, amount, this.deps.now());
    const json = JSON.stringify(done);
    this.calls.delete(reservationId);
    const part = Math.min(done.cost, lease.held);
    lease.inflight -= amount;
    lease.calls--;
    lease.held -= part;
    try {
      // Durable here: the store has it within shipMs, or the next process from this journal.
      await this.journal.append({ t: 's', l: lease.id, c: rec.c, e: done }, json);
    } catch (err) {
      // Not written: the call stays open for the caller's retry.
      lease.inflight += amount;
      lease.calls++;
      lease.held += part;
      this.calls.set(reservationId, call);
      throw err;
    }
    const op: LeaseOp & { [LEDGER_JSON]?: string } = {
      reservationId: lease.id,
      call: rec.c,
      entry: done,
      [LEDGER_JSON]: json,
    };
    // Near a ceiling a slice keeps no room beyond its calls in flight: the rest goes back with
    // this settlement, at once, and the identity's next call asks the store again.
    const tight = this.near.isTight(lease.scopes);
    if (tight) this.forget(lease);
    if (lease.retired && lease.calls === 0) {
      op.close = true;
      this.open.delete(lease.id);
    } else if (tight && lease.held > lease.inflight) {
      op.free = lease.held - lease.inflight;
      lease.held = lease.inflight;
    }
    this.step(op, lease, tight);
    return done;
  }

  private async finishSingle(
    rec: Call['rec'],
    entry: LedgerInput,
    direct: () => Promise<LedgerEntry>,
  ): Promise<LedgerEntry> {
    const done = settledEntry(entry, callEntryId(rec.l, rec.c), rec.l, rec.r, this.deps.now());
    const json = JSON.stringify(done);
    this.singles.delete(rec.l);
    try {
      await this.journal.append({ t: 's', l: rec.l, c: rec.c, e: done }, json);
    } catch {
      return this.direct(direct);
    }
    const urgent = this.near.any && this.near.isTight(identityScopes(rec.i));
    this.step(
      { reservationId: rec.l, call: rec.c, entry: done, close: true, [LEDGER_JSON]: json },
      undefined,
      urgent,
    );
    return done;
  }

  private step = (op: LeaseOp & { [LEDGER_JSON]?: string }, lease?: Lease, urgent = false) =>
    this.batches.step(op, lease, urgent);

  /** Sends every queued step in one batch now (`upkeep: 'manual'`: the simulation's clock). */
  ship = (): Promise<void> => this.batches.ship();

  /** What the journal must still hold: open slices, calls in flight, steps not yet shipped. */
  private live(): JournalRecord[] {
    const out: JournalRecord[] = [];
    for (const l of this.open.values()) out.push({ t: 'l', l: l.id });
    for (const c of this.calls.values()) out.push(c.rec);
    for (const rec of this.singles.values()) out.push(rec);
    for (const p of this.batches.queue) {
      const { entry, call } = p.op;
      if (entry && call) out.push({ t: 's', l: p.op.reservationId, c: call, e: entry });
    }
    return out;
  }

  /** Ships what is queued and waits for it: reads here see this process's settlements. */
  protected override beforeRead(): Promise<void> {
    return this.batches.drain();
  }

  /** No new calls from this lease; what it does not hold for calls in flight goes back now,
   * resolved once written (at once when nothing did). */
  private retire(lease: Lease): Promise<void> {
    if (this.current.get(lease.key) === lease) this.current.delete(lease.key);
    lease.retired = true;
    if (!this.open.has(lease.id)) return Promise.resolve();
    const free = lease.held - lease.inflight;
    if (lease.calls === 0) {
      this.open.delete(lease.id);
      this.stats.returned++;
      return this.step({ reservationId: lease.id, close: true }, lease, true);
    }
    if (free <= 0) return Promise.resolve();
    lease.held -= free;
    return this.step({ reservationId: lease.id, free }, lease, true);
  }

  private forget(lease: Lease): void {
    lease.retired = true;
    if (this.current.get(lease.key) === lease) this.current.delete(lease.key);
    if (lease.calls === 0) this.open.delete(lease.id);
  }

  /** Returns the slack of every lease on `scope` (a grant was refused there): how much went back. */
  private async giveBack(scope: Scope): Promise<Micros> {
    const ops: Promise<void>[] = [];
    let total = 0;
    for (const lease of [...this.current.values()]) {
      if (!lease.scopes.includes(scope)) continue;
      const free = lease.held - lease.inflight;
      if (free <= 0) continue;
      total += free;
      ops.push(this.retire(lease));
    }
    await Promise.all(ops);
    return total;
  }

  // ---- upkeep: renew, return idle slices, read the kill switches ----------------------------

  private async upkeep(): Promise<void> {
    if (this.closed) return;
    const now = this.deps.now();
    for (const [key, at] of this.seen) {
      if (now - at > this.o.idleMs) {
        this.seen.delete(key);
        this.sizes.forget(key);
      }
    }
    this.near.forgetIdle(this.o.idleMs);
    this.journal.heartbeat();
    for (const lease of [...this.open.values()]) {
      if (!lease.retired && lease.calls === 0 && now - lease.lastUsed >= this.o.idleMs) {
        this.retire(lease);
      } else if (lease.expiresAt - now < (this.o.ttlMs * 2) / 3) {
        lease.expiresAt = now + this.o.ttlMs;
        void this.step({ reservationId: lease.id, expiresAt: lease.expiresAt }, lease);
      }
    }
    if (now >= this.validUntil - this.o.validityMs / 2) await this.refresh().catch(() => {});
  }

  /**
   * Reads the kill switches from the store; admission from memory is valid for validityMs after.
   * With other replicas (a broadcast) the same step beats in the replica registry: a replica the
   * others count as dead (no beat for 2 × validity) has not read the kills for that long either,
   * and admits nothing from memory.
   */
  private refresh(): Promise<void> {
    this.refreshing ??= (async () => {
      const asked = this.deps.now();
      try {
        this.stats.storeCalls++;
        const kills = await (this.peers
          ? this.store.replicaBeat(this.replica, asked)
          : this.store.listKills());
        this.kills = new Map(kills.map((k) => [k.scope, k]));
        for (const k of kills) this.revokeLocal(k.scope);
        this.validUntil = asked + this.o.validityMs;
      } catch (err) {
        this.validUntil = Number.NEGATIVE_INFINITY;
        throw err instanceof EnforcementUnavailableError
          ? err
          : new EnforcementUnavailableError('could not read the kill switches', { cause: err });
      } finally {
        this.refreshing = undefined;
      }
    })();
    return this.refreshing;
  }

  // ---- kill switches, freezes and ceilings: here at once, on every replica before returning ----

  override async setKill(scope: Scope, by: Actor): Promise<KillSwitch> {
    const kill = await this.store.setKill(scope, by);
    this.applyKill(kill);
    await this.peers?.announce({ t: 'kill', kill });
    return kill;
  }

  override async liftKill(scope: Scope, by: Actor): Promise<boolean> {
    const lifted = await this.store.liftKill(scope, by);
    this.kills.delete(scope);
    this.peers?.tell({ t: 'lift', scope });
    return lifted;
  }

  override async setCeiling(scope: Scope, ceiling: Micros, by: Actor): Promise<Budget> {
    const b = await this.store.setCeiling(scope, ceiling, by);
    this.revokeLocal(scope);
    await this.peers?.announce({ t: 'revoke', scope });
    return b;
  }

  override async setFrozen(scope: Scope, frozen: boolean, by: Actor): Promise<Budget> {
    const b = await this.store.setFrozen(scope, frozen, by);
    this.revokeLocal(scope);
    await this.peers?.announce({ t: 'revoke', scope });
    return b;
  }

  private applyKill(kill: KillSwitch): Promise<void> {
    this.kills.set(kill.scope, kill);
    return this.revokeLocal(kill.scope);
  }

  /** Retires every lease on `scope`; resolves once what went back is written. */
  private revokeLocal(scope: Scope): Promise<void> {
    const ops: Promise<void>[] = [];
    for (const lease of [...this.current.values()])
      if (lease.scopes.includes(scope)) ops.push(this.retire(lease));
    return Promise.all(ops).then(() => {});
  }

  /** Asks the other replicas to give back their slack on `scope`; true when any may have. */
  private async askSlack(scope: Scope): Promise<boolean> {
    if (!this.peers || (await this.peers.live()).size === 0) return false;
    const should = this.near.slackAsk(scope);
    if (should !== 'ask') return should === 'heard';
    await this.peers.announce({ t: 'slack', scope });
    return true;
  }

  /** A change another replica announced, carried out here. */
  private applyChange(c: LeaseChange): Promise<void> | undefined {
    if (c.t === 'kill') return this.applyKill(c.kill);
    if (c.t === 'revoke') return this.revokeLocal(c.scope);
    if (c.t === 'lift') {
      this.kills.delete(c.scope);
      return undefined;
    }
    this.near.heardAsk(c.scope);
    return Promise.all([this.revokeLocal(c.scope), this.ship()]).then(() => {});
  }

  // ---- the rest is the store's (reads wait for `beforeRead`) --------------------------------

  override isUp(): boolean {
    return !this.closed && this.store.isUp();
  }

  /** Stops leasing (`stop`) and closes the store under it. */
  override async close(): Promise<void> {
    await this.stop();
    await this.store.close();
  }

  /**
   * Returns every idle slice and waits for the settlements in flight; the store stays open (it is
   * its opener's to close). Slices still holding calls stay open and expire (charged what they
   * held) if never settled.
   */
  async stop(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    for (const lease of [...this.open.values()]) void this.retire(lease);
    await this.batches.drain().catch(() => {});
    // Nothing left to recover: no step unshipped, no call in flight (calls still open stay in the
    // journal; the next process charges them their worst case).
    this.journal.close(this.batches.queue.length === 0 && this.calls.size === 0 && this.singles.size === 0);
    this.peers?.leave();
  }

  /** What this process holds: open leases and the calls in flight on them (tests, metrics). */
  holding(): { leases: number; held: Micros; calls: number } {
    let held = 0;
    let calls = 0;
    for (const l of this.open.values()) {
      held += l.held;
      calls += l.calls;
    }
    return { leases: this.open.size, held, calls };
  }
}

/** Wraps a money store in budget leases and reads the kill switches once. */
export function openLeases(
  store: MoneyStore,
  options: Partial<LeaseOptions>,
  deps: LeaseDeps,
): Promise<LeasedMoneyStore> {
  return new LeasedMoneyStore(store, { ...LEASE_DEFAULTS, ...options }, deps).start();
}

import type { Scope } from '../../../identity.ts';

/**
 * Every key the Redis store uses, under one prefix that carries a hash tag (`{cp}` by default), so
 * all of them land in one Redis Cluster slot and multi-key scripts work there.
 *
 * | key                      | type   | holds                                                     |
 * |--------------------------|--------|-----------------------------------------------------------|
 * | `{cp}:b:<budget id>`     | hash   | a budget: ceiling, window, frozen, reserved, window spend |
 * | `{cp}:scopes`            | zset   | every budget's scope (score 0, read by lex range)         |
 * | `{cp}:rates`             | zset   | every rate limit's rate key (store/rates.ts), as scopes   |
 * | `{cp}:kills`             | hash   | scope → kill switch JSON                                  |
 * | `{cp}:r:<reservation>`   | hash   | a reservation; a tombstone for 7 days once closed         |
 * | `{cp}:rexp`              | zset   | open reservation ids by expiry                            |
 * | `{cp}:ledger`            | stream | ledger entries (field `e`, JSON)                          |
 * | `{cp}:li:<scope>`        | zset   | ledger index per scope (`global` = all), score = time     |
 * | `{cp}:sd:<YYYY-MM-DD>`   | hash   | spend rollup for one local day                            |
 * | `{cp}:audit`             | stream | audit entries (field `e`, JSON)                           |
 * | `{cp}:ai`, `{cp}:ai:<t>` | zset   | audit index, all and per target, score = time             |
 * | `{cp}:corr`              | hash   | request id → its correction of an expired charge (JSON)   |
 * | `{cp}:ping`              | string | written by ping()                                         |
 * | `{cp}:replicas`          | zset   | budget-lease replicas by when they last beat              |
 * | `{cp}:cap:<budget id>`   | hash   | a partitioned store's caps per partition (caps.lua)       |
 * | `{cp}:pturn`             | string | which partition the next partitioned store opened takes   |
 */
export class RedisKeys {
  readonly prefix: string;
  readonly scopes: string;
  readonly kills: string;
  readonly rexp: string;
  readonly ledger: string;
  readonly audit: string;
  readonly auditAll: string;
  readonly ping: string;
  readonly corrections: string;
  readonly rates: string;
  readonly replicas: string;

  constructor(prefix = '{cp}') {
    // Without a hash tag the keys would scatter over cluster slots; add one rather than fail later.
    this.prefix = /\{[^}]+\}/.test(prefix) ? prefix : `{${prefix}}`;
    const p = this.prefix;
    this.scopes = `${p}:scopes`;
    this.kills = `${p}:kills`;
    this.rexp = `${p}:rexp`;
    this.ledger = `${p}:ledger`;
    this.audit = `${p}:audit`;
    this.auditAll = `${p}:ai`;
    this.ping = `${p}:ping`;
    this.replicas = `${p}:replicas`;
    this.corrections = `${p}:corr`;
    this.rates = `${p}:rates`;
  }

  budget(id: string): string {
    return `${this.prefix}:b:${id}`;
  }
  reservation(id: string): string {
    return `${this.prefix}:r:${id}`;
  }
  ledgerIndex(scope: Scope): string {
    return `${this.prefix}:li:${scope}`;
  }
  rollup(day: string): string {
    return `${this.prefix}:sd:${day}`;
  }
  auditIndex(target: string): string {
    return `${this.prefix}:ai:${target}`;
  }
}

/**
 * Index members are zero-padded stream ids (`0001718013600000-0000000003`), or, for an entry packed
 * with others in one stream entry (a lease batch's), that id and the entry's place among the stream
 * entry's `e` fields (`0001718013600000-0000000003-00002`): back to `ms-seq` and the place (0 for
 * a stream entry of its own).
 */
export function indexMemberOf(member: string): { id: string; place: number } {
  const m = /^0*(\d+)-0*(\d+)(?:-(\d+))?$/.exec(member);
  if (!m) throw new Error(`not an index member: ${member}`);
  return { id: `${m[1]}-${m[2]}`, place: m[3] === undefined ? 0 : Number(m[3]) };
}

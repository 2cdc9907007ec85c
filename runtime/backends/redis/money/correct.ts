import {
  type CorrectionResult,
  type ExpiredCorrection,
  type LedgerEntry,
  StoreInputError,
} from '../../../store/port.ts';
import {
  budgetId,
  CorruptRecordError,
  correctionEntry,
  identityScopes,
  storedJson,
} from '../../../store/records.ts';
import { dayKey, dayWindow, monthWindow } from '../../../store/windows.ts';
import type { RedisKeys } from './keys.ts';
import { readIndex, rollupField } from './replies.ts';
import { call, type ScriptedRedis } from './scripts.ts';

/**
 * Reconciliation's correction of an `expired` entry on Redis: the entry is read first (ledger
 * entries never change), then correct.lua checks it is still what was read and writes the
 * correction, the budgets and the request id's mark in one script.
 */
export async function correctIn(
  redis: ScriptedRedis,
  k: RedisKeys,
  timeZone: string,
  now: number,
  context: (string | number)[],
  c: ExpiredCorrection,
): Promise<CorrectionResult> {
  const [expired] = await readIndex<LedgerEntry>(
    redis,
    k.ledger,
    k.ledgerIndex('global'),
    c.expired.at,
    c.expired.at + 1,
    1,
    (e) => e.id === c.expired.id,
    'ledger entry',
  );
  if (!expired) throw new StoreInputError('not_found', `no ledger entry ${c.expired.id} at ${c.expired.at}`);
  if (expired.outcome !== 'expired') {
    throw new StoreInputError('invalid', `ledger entry ${expired.id} is ${expired.outcome}, not expired`);
  }
  const entry = correctionEntry(expired, c.billed, c.source, now);
  const scopes = identityScopes(expired.identity);
  const keys = [
    k.corrections,
    k.ledger,
    k.ledgerIndex('global'),
    k.rollup(dayKey(expired.at, timeZone)),
    ...scopes.map((s) => k.budget(budgetId(s))),
    ...scopes.map((s) => k.ledgerIndex(s)),
  ];
  const args = [
    ...context,
    expired.id,
    expired.at,
    expired.requestId,
    expired.cost,
    JSON.stringify(entry),
    entry.cost,
    dayWindow(expired.at, timeZone).key,
    monthWindow(expired.at, timeZone).key,
    rollupField(entry),
    scopes.length,
  ];
  const reply = (await call(redis, 'cpCorrect', keys, args)) as unknown[];
  switch (reply[0]) {
    case 'corrected':
      return { entry, created: true };
    case 'done':
      return { entry: storedJson<LedgerEntry>(reply[1], 'correction'), created: false };
    case 'missing':
    case 'changed':
      throw new StoreInputError('invalid', `ledger entry ${expired.id} changed while it was corrected`);
    default:
      throw new CorruptRecordError('correct reply', reply);
  }
}

import { describe, expect, it } from 'vitest';
import type { OpenBatch } from '../../../runtime/store/batches.ts';
import { backendPairs, KINDS } from './harness.ts';

const batch = (id: string, over: Partial<OpenBatch> = {}): OpenBatch => ({
  id,
  identity: { team: 'payments', env: 'prod', seat: 'alice' },
  reservation: {
    id: `res_${id}`,
    amount: 120_000,
    scopes: ['global', 'team:payments', 'env:prod', 'seat:alice'],
    createdAt: 1_700_000_000_000,
    expiresAt: 1_700_090_000_000,
  },
  models: { a: 'claude-haiku-4-5', b: 'claude-sonnet-4-5' },
  ...over,
});

describe.each(KINDS)('open message batches (%s)', (kind) => {
  const pair = backendPairs(kind, 'batches');

  it('keeps a batch whole for every process sharing the backend, until it is forgotten', async () => {
    const { a, b } = await pair();
    await a.batches.put(batch('msgbatch_1'));
    await a.batches.put(batch('msgbatch_2', { models: { only: 'claude-haiku-4-5' } }));
    expect(await b.batches.get('msgbatch_1')).toEqual(batch('msgbatch_1'));
    expect((await b.batches.list()).map((x) => x.id).sort()).toEqual(['msgbatch_1', 'msgbatch_2']);
    await b.batches.delete('msgbatch_1');
    expect(await a.batches.get('msgbatch_1')).toBeUndefined();
    expect((await a.batches.list()).map((x) => x.id)).toEqual(['msgbatch_2']);
    await a.batches.delete('msgbatch_missing');
  });
});

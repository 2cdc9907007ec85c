import { describe, expect, it } from 'vitest';
import { hashKey, KeyRing, type StoredKey } from '../../../runtime/auth/keys.ts';
import { backendPairs, eventually, KINDS } from './harness.ts';

const key = (n: number, over: Partial<StoredKey> = {}): StoredKey => ({
  id: `key_${n}`,
  hash: hashKey(`cp_secret-${n}`),
  team: 'payments',
  env: 'prod',
  seat: `seat-${n}`,
  createdAt: 1_700_000_000_000 + n,
  ...over,
});

describe.each(KINDS)('keys store (%s)', (kind) => {
  const pair = backendPairs(kind, 'keys');

  it('finds a stored key by hash and by id, from another process too', async () => {
    const { a, b } = await pair();
    await a.keys.put(key(1, { workflow: 'triage', label: 'ci', sessionTimeBox: 60_000 }));
    for (const store of [a.keys, b.keys]) {
      expect(await store.byHash(hashKey('cp_secret-1'))).toEqual(
        key(1, { workflow: 'triage', label: 'ci', sessionTimeBox: 60_000 }),
      );
      expect((await store.byId('key_1'))?.seat).toBe('seat-1');
    }
  });

  it('answers undefined for a key it never stored', async () => {
    const { a } = await pair();
    expect(await a.keys.byHash(hashKey('cp_nobody'))).toBeUndefined();
    expect(await a.keys.byId('key_nobody')).toBeUndefined();
  });

  it('lists every key, newest first', async () => {
    const { a, b } = await pair();
    for (const n of [2, 1, 3]) await a.keys.put(key(n));
    expect((await b.keys.list()).map((k) => k.id)).toEqual(['key_3', 'key_2', 'key_1']);
  });

  it('replaces a key stored again under its id (a revocation), keeping one record', async () => {
    const { a, b } = await pair();
    await a.keys.put(key(1));
    await a.keys.put(key(1, { revokedAt: 1_700_000_100_000 }));
    expect((await b.keys.byHash(hashKey('cp_secret-1')))?.revokedAt).toBe(1_700_000_100_000);
    expect((await b.keys.byId('key_1'))?.revokedAt).toBe(1_700_000_100_000);
    expect(await b.keys.list()).toHaveLength(1);
  });

  it('tells the other processes of a revocation (Redis); one process needs no telling', async () => {
    const { a, b, distributed } = await pair();
    const heard: string[] = [];
    await b.keys.onRevoked((id) => heard.push(id));
    await a.keys.announceRevoked('key_7');
    if (distributed) await eventually('the revocation', () => heard.length > 0);
    else await new Promise((r) => setTimeout(r, 50));
    expect(heard).toEqual(distributed ? ['key_7'] : []);
  });

  it('refuses a revoked key on the ring of another process at its next request', async () => {
    const { a, b, distributed } = await pair();
    const ringA = await KeyRing.open(a.keys);
    // Embedded is one process: both rings are the same process's, which shares one ring.
    const ringB = distributed ? await KeyRing.open(b.keys) : ringA;
    const { key: plain, record } = await ringA.create({ team: 'payments', env: 'prod', seat: 'bob' });
    expect((await ringB.authenticate(plain))?.id).toBe(record.id); // cached on B now
    await ringA.revoke(record.id);
    await eventually(
      'the revoked key to be refused',
      async () => (await ringB.authenticate(plain)) === undefined,
    );
    expect(await ringA.authenticate(plain)).toBeUndefined();
  });
});

import { describe, expect, it } from 'vitest';
import type { Identity } from '../../../runtime/identity.ts';
import { StoreInputError } from '../../../runtime/store/port.ts';
import { identityScopes, prepareEntry, scopesKey, settledEntry } from '../../../runtime/store/records.ts';

describe('identityScopes (remembered by the identity’s values)', () => {
  it('gives the checked scopes, the same frozen list for the same values', () => {
    const a = identityScopes({ team: 'pay', env: 'prod', seat: 'alice', workflow: 'triage' });
    expect(a).toEqual(['global', 'team:pay', 'env:prod', 'seat:alice', 'workflow:triage']);
    expect(Object.isFrozen(a)).toBe(true);
    expect(identityScopes({ team: 'pay', env: 'prod', seat: 'alice', workflow: 'triage' })).toBe(a);
    expect(identityScopes({ team: 'pay', env: 'prod', seat: 'alice' })).not.toBe(a);
  });

  it('never answers for other values: lengths keep every identity apart, bad ones are refused each time', () => {
    // Values that a plain separator would run together.
    const one = identityScopes({ team: 'a', env: 'b-c', seat: 'd' });
    const two = identityScopes({ team: 'a-b', env: 'c', seat: 'd' });
    expect(one).toContain('env:b-c');
    expect(two).toContain('team:a-b');
    const bad: Identity = { team: 'a\u0000b', env: 'c', seat: 'd' };
    for (let i = 0; i < 2; i++) expect(() => identityScopes(bad)).toThrow(StoreInputError);
    expect(() => identityScopes({ team: 'x', env: 'y', seat: 5 } as unknown as Identity)).toThrow(
      /identity.seat must be a string/,
    );
    // The same team, env and seat with a different workflow, run or provider: each its own list.
    const w = identityScopes({ team: 'p', env: 'q', seat: 'r', workflow: 'a' });
    const r = identityScopes({ team: 'p', env: 'q', seat: 'r', run: 'a' });
    const p = identityScopes({ team: 'p', env: 'q', seat: 'r', provider: 'a' });
    expect(w).toContain('workflow:a');
    expect(r).toContain('run:a');
    expect(r).not.toContain('workflow:a');
    expect(p).not.toBe(w);
    expect(identityScopes({ team: 'p', env: 'q', seat: 'r', run: 'a' })).toBe(r);
    // An empty workflow is not a missing one.
    expect(identityScopes({ team: 'x', env: 'y', seat: 'z', workflow: '' })).toEqual([
      'global',
      'team:x',
      'env:y',
      'seat:z',
    ]);
  });
});

describe('scopesKey', () => {
  it('joins a frozen list once; a list that can change is joined each time', () => {
    const frozen = identityScopes({ team: 'k', env: 'l', seat: 'm' });
    expect(scopesKey(frozen)).toBe('global team:k env:l seat:m');
    expect(scopesKey(frozen)).toBe(scopesKey(frozen));
    const open = ['global', 'team:k'];
    expect(scopesKey(open)).toBe('global team:k');
    open.push('env:l');
    expect(scopesKey(open)).toBe('global team:k env:l');
  });
});

describe('settledEntry', () => {
  const input = {
    requestId: 'r1',
    identity: { team: 'pay', env: 'prod', seat: 'alice' },
    kind: 'model' as const,
    name: 'claude-haiku-4-5',
    tokens: { input: 10, cacheWrite5m: 0, cacheWrite1h: 0, cacheRead: 0, output: 5 },
    reserved: 0,
    cost: 3_000,
    outcome: 'ok' as const,
    latencyMs: 2,
    code: 'x',
  };

  it('is the entry prepareEntry then finishing would give, in one copy', () => {
    const done = settledEntry(input, 'led_1', 'res_1', 2_000, 1_700_000_000_000);
    const prepared = prepareEntry({ ...input, id: 'led_1', reserved: 2_000 }, 1_700_000_000_000);
    expect(done).toEqual({ ...prepared, reservationId: 'res_1', overrun: 1_000 });
    // Prepared already: a step carrying it is not checked and copied again.
    expect(prepareEntry(done, 0)).toBe(done);
  });

  it('checks what prepareEntry checks', () => {
    expect(() => settledEntry({ ...input, cost: -1 }, 'l', 'r', 0, 0)).toThrow(/cost/);
    expect(() => settledEntry({ ...input, outcome: 'corrected' as 'ok' }, 'l', 'r', 0, 0)).toThrow(/outcome/);
    expect(() =>
      settledEntry({ ...input, tokens: { ...input.tokens, output: 1.5 } }, 'l', 'r', 0, 0),
    ).toThrow(/tokens.output/);
    expect(() => settledEntry(input, 'l', 'r', -5, 0)).toThrow(/reserved/);
  });
});

import { describe, expect, it } from 'vitest';
import type { SessionRecord } from '../../../runtime/backends/ports.ts';
import type { SessionState } from '../../../runtime/store/approvals.ts';
import { backendPairs, KINDS } from './harness.ts';

const T0 = 1_700_000_000_000;

const agentSession = (id: string, over: Partial<SessionState> = {}): SessionState => ({
  id,
  keyId: 'key_1',
  identity: { team: 'payments', env: 'prod', seat: 'alice', session: 'build-42' },
  startedAt: T0,
  clockStart: T0,
  lastAt: T0,
  boxMs: 600_000,
  state: 'active',
  suspensions: 0,
  ...over,
});

describe.each(KINDS)("approvals' session store (%s)", (kind) => {
  const pair = backendPairs(kind, 'sessions');

  it('keeps a session whole, for every process', async () => {
    const { a, b } = await pair();
    await a.sessions.put(agentSession('key_1.build-42'));
    expect(await b.sessions.get('key_1.build-42')).toEqual(agentSession('key_1.build-42'));
    expect(await b.sessions.get('key_1.other')).toBeUndefined();
  });

  it('replaces a session put again (its state moves on)', async () => {
    const { a, b } = await pair();
    await a.sessions.put(agentSession('s1'));
    await b.sessions.put(agentSession('s1', { state: 'waiting', suspensions: 1, lastAt: T0 + 5 }));
    expect(await a.sessions.get('s1')).toEqual(
      agentSession('s1', { state: 'waiting', suspensions: 1, lastAt: T0 + 5 }),
    );
  });
});

const webSession = (id: string, now: number, over: Partial<SessionRecord> = {}): SessionRecord => ({
  id,
  tokenHash: 'a'.repeat(64),
  createdAt: now,
  lastAt: now,
  expiresAt: now + 3_600_000,
  ...over,
});

describe.each(KINDS)('web session store (%s)', (kind) => {
  const pair = backendPairs(kind, 'web');

  it('keeps a session for every process, and a logout ends it everywhere', async () => {
    const { a, b } = await pair();
    const now = Date.now();
    await a.webSessions.put(webSession('w1', now), 60_000);
    expect(await b.webSessions.get('w1')).toEqual(webSession('w1', now));
    await b.webSessions.delete('w1');
    expect(await a.webSessions.get('w1')).toBeUndefined();
    expect(await a.webSessions.get('never')).toBeUndefined();
  });

  it('records activity', async () => {
    const { a, b } = await pair();
    const now = Date.now();
    await a.webSessions.put(webSession('w2', now), 60_000);
    await b.webSessions.touch('w2', now + 1_000, 60_000);
    expect((await a.webSessions.get('w2'))?.lastAt).toBe(now + 1_000);
  });

  it('counts failed logins per address until cleared, and forgets them after `keepMs`', async () => {
    const { a, b } = await pair();
    const now = Date.now();
    expect(await a.webSessions.failures('10.0.0.1')).toBeUndefined();
    await a.webSessions.setFailures('10.0.0.1', { count: 3, firstAt: now, lastAt: now + 5 }, 60_000);
    expect(await b.webSessions.failures('10.0.0.1')).toEqual({ count: 3, firstAt: now, lastAt: now + 5 });
    expect(await b.webSessions.failures('10.0.0.2')).toBeUndefined();
    await b.webSessions.clearFailures('10.0.0.1');
    expect(await a.webSessions.failures('10.0.0.1')).toBeUndefined();
    await a.webSessions.setFailures('10.0.0.3', { count: 1, firstAt: now, lastAt: now }, 30);
    await new Promise((r) => setTimeout(r, 80));
    expect(await a.webSessions.failures('10.0.0.3')).toBeUndefined();
  });

  it('keeps one session secret for every process: the first one stored', async () => {
    const { a, b } = await pair();
    expect(await a.webSessions.secret('first')).toBe('first');
    expect(await b.webSessions.secret('second')).toBe('first');
    expect(await a.webSessions.secret('third')).toBe('first');
  });
});

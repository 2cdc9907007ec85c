import { describe, expect, it } from 'vitest';
import { backendPairs, eventually, KINDS } from './harness.ts';

describe.each(KINDS)('broadcast (%s)', (kind) => {
  const pair = backendPairs(kind, 'broadcast');

  it('reaches every listener of the topic in this process, and (Redis) in every other', async () => {
    const { a, b, distributed } = await pair();
    const here: string[] = [];
    const there: string[] = [];
    const other: string[] = [];
    await a.broadcast.subscribe('runs', (m) => here.push(m));
    await b.broadcast.subscribe('runs', (m) => there.push(m));
    await a.broadcast.subscribe('alarms', (m) => other.push(m));
    a.broadcast.publish('runs', 'r_1 done');
    await eventually('the message here', () => here.length === 1);
    if (distributed) await eventually('the message there', () => there.length === 1);
    else await new Promise((r) => setTimeout(r, 50));
    expect(here).toEqual(['r_1 done']);
    expect(there).toEqual(distributed ? ['r_1 done'] : []);
    expect(other).toEqual([]);
  });

  it('stops calling a listener once unsubscribed, the others still hear', async () => {
    const { a } = await pair();
    const first: string[] = [];
    const second: string[] = [];
    const off = await a.broadcast.subscribe('runs', (m) => first.push(m));
    await a.broadcast.subscribe('runs', (m) => second.push(m));
    a.broadcast.publish('runs', 'one');
    await eventually('the first message', () => first.length === 1 && second.length === 1);
    off();
    a.broadcast.publish('runs', 'two');
    await eventually('the second message', () => second.length === 2);
    expect(first).toEqual(['one']);
    expect(second).toEqual(['one', 'two']);
  });
});

describe.each(KINDS)('backend lifecycle (%s)', (kind) => {
  const pair = backendPairs(kind, 'lifecycle');

  it('closes every port it opened, once, however often it is asked', async () => {
    const { a } = await pair();
    const runs = a.runs;
    expect(a.runs).toBe(runs); // opened once, on first use
    void a.sessions;
    void a.webSessions;
    await a.close();
    await a.close();
    expect(() => a.approvals).toThrow(/closed/);
  });
});

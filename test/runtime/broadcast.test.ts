import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { redisBroadcast } from '../../runtime/backends/redis/broadcast.ts';
import { createLogger } from '../../runtime/log.ts';

const REDIS_URL = process.env.REDIS_URL || 'redis://127.0.0.1:6379';

/** The Redis broadcast on a real Redis: two "processes" (connection pairs) under one prefix. */
describe('redis broadcast', () => {
  const prefix = `{cpt-bc-${process.pid}}`;
  const conns: Redis[] = [];
  const open = () => {
    const cmd = new Redis(REDIS_URL);
    const sub = new Redis(REDIS_URL);
    conns.push(cmd, sub);
    return redisBroadcast(cmd, sub, prefix, createLogger({ level: 'error', write: () => {} }));
  };
  afterAll(() => {
    for (const c of conns) c.disconnect();
  });

  const until = async (what: string, ok: () => boolean) => {
    for (let i = 0; i < 200 && !ok(); i++) await new Promise((r) => setTimeout(r, 10));
    if (!ok()) throw new Error(`timed out waiting for ${what}`);
  };

  it('every subscriber of a topic hears it, the publisher included; one leaving does not deafen the rest', async () => {
    const a = open();
    const b = open();
    const heard: string[] = [];
    const offA1 = await a.subscribe('runs', (m) => heard.push(`a1:${m}`));
    await a.subscribe('runs', (m) => heard.push(`a2:${m}`));
    await b.subscribe('runs', (m) => heard.push(`b:${m}`));
    await b.subscribe('other', (m) => heard.push(`b-other:${m}`));
    a.publish('runs', 'one');
    await until('three deliveries', () => heard.length === 3);
    expect(heard.sort()).toEqual(['a1:one', 'a2:one', 'b:one']);

    offA1();
    heard.length = 0;
    b.publish('runs', 'two');
    await until('two deliveries', () => heard.length === 2);
    expect(heard.sort()).toEqual(['a2:two', 'b:two']);
  });
});

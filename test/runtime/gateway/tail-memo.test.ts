import { describe, expect, it } from 'vitest';
import { claudeCodeBodies } from '../../../bench/lib/claude-code-body.ts';
import { parseJson } from '../../../runtime/faces/gateway/common.ts';
import { checkBody, inspect, MAX_DEPTH, type MessagesBody } from '../../../runtime/gateway/messages.ts';
import { fingerprint } from '../../../runtime/gateway/prefix.ts';
import { StreamTracker } from '../../../runtime/gateway/streams.ts';
import { sealedValues, TailMemo } from '../../../runtime/gateway/tail-memo.ts';

const parse = (raw: Buffer) => JSON.parse(raw.toString('utf8'));
/** Equal values and the same key order, all the way down. */
const same = (a: unknown, b: unknown) => expect(JSON.stringify(a)).toBe(JSON.stringify(b));

describe('TailMemo', () => {
  const turns = claudeCodeBodies(6).map((b) => Buffer.from(b));

  it('parses each turn of a session as JSON.parse does, the tail parsed once and shared', () => {
    const memo = new TailMemo();
    let fullParses = 0;
    const full = (raw: Buffer) => {
      fullParses++;
      return parse(raw);
    };
    const bodies = turns.map((raw) => memo.parse('s', raw, full) as MessagesBody);
    for (const [i, raw] of turns.entries()) same(bodies[i], parse(raw));
    expect(fullParses).toBe(1);
    expect(bodies[3]!.tools).toBe(bodies[0]!.tools);
    expect(Object.isFrozen(bodies[3]!.tools![0])).toBe(true);
    expect(sealedValues.has(bodies[3]!.tools![0] as object)).toBe(true);
    // The part that changes is the body's own.
    expect(Object.isFrozen(bodies[3]!.messages)).toBe(false);
  });

  it('parses whole a body whose tail differs, is serialised otherwise, or repeats a tail key', () => {
    const memo = new TailMemo();
    const base = JSON.parse(turns[0]!.toString('utf8'));
    memo.parse('s', turns[0]!, parse);
    const variants = [
      { ...base, max_tokens: 1000 },
      { ...base, tools: base.tools.slice(1) },
      { model: base.model, messages: base.messages, stream: false, ...base },
    ].map((b) => Buffer.from(JSON.stringify(b)));
    // Same members, other whitespace; a tail key repeated in the head; the head alone.
    const spaced = Buffer.from(JSON.stringify(base, null, 1));
    const tailStart = turns[0]!.indexOf(',"system":');
    const dup = Buffer.concat([
      turns[0]!.subarray(0, tailStart),
      Buffer.from(',"stream":false'),
      turns[0]!.subarray(tailStart),
    ]);
    const headOnly = Buffer.concat([Buffer.from('{'), turns[0]!.subarray(tailStart + 1)]);
    for (const raw of [...variants, spaced, dup]) same(memo.parse('s', raw, parse), parse(raw));
    expect(() =>
      memo.parse('s', Buffer.concat([Buffer.from('{'), turns[0]!.subarray(tailStart)]), parseJson),
    ).toThrow(/not valid JSON/);
    same(memo.parse('s', headOnly, parse), parse(headOnly));
  });

  it('never splits inside a string or a nested value', () => {
    const memo = new TailMemo();
    const tail = ',"system":"S","tools":[],"max_tokens":5}';
    const first = Buffer.from(`{"model":"m","messages":[]${tail}`);
    memo.parse('s', first, parse);
    // The tail's bytes inside a string, and closing a nested object.
    const inString = Buffer.from(`{"model":"m","messages":[],"x":"${tail.replace(/"/g, '\\"')}"}`);
    const nested = Buffer.from(`{"model":"m","messages":[],"x":{"a":1${tail}}`);
    for (const raw of [inString, nested]) same(memo.parse('s', raw, parse), parse(raw));
    expect(() =>
      memo.parse('s', Buffer.from(`{"model":"m","messages":[],"x":{"a":1${tail}`), parseJson),
    ).toThrow(/not valid JSON/);
  });

  it('keeps a stream apart from the others, and forgets the oldest beyond its bound', () => {
    const memo = new TailMemo(2);
    let fullParses = 0;
    const full = (raw: Buffer) => {
      fullParses++;
      return parse(raw);
    };
    for (const key of ['a', 'b', 'c', 'a']) memo.parse(key, turns[0]!, full);
    expect(fullParses).toBe(4);
    memo.parse('c', turns[1]!, full);
    expect(fullParses).toBe(4);
  });
});

describe('a body with a sealed tail', () => {
  const turns = claudeCodeBodies(5).map((b) => Buffer.from(b));

  it('gives the same estimate, fingerprint and cache verdicts as a body parsed whole', () => {
    const memo = new TailMemo();
    const memoStreams = new StreamTracker();
    const wholeStreams = new StreamTracker();
    const tokens = { input: 10, cacheWrite5m: 2_000, cacheWrite1h: 0, cacheRead: 9_000, output: 50 };
    for (const [i, raw] of [...turns, turns[1]!, turns[4]!].entries()) {
      const a = checkBody(memo.parse('s', raw, parse));
      const b = checkBody(parse(raw));
      expect(inspect(a)).toEqual(inspect(b));
      const fa = memoStreams.fingerprint('s', a);
      const fb = wholeStreams.fingerprint('s', b);
      expect([fa.prefixHash, fa.staticHash, fa.prefixBlocks]).toEqual([
        fb.prefixHash,
        fb.staticHash,
        fb.prefixBlocks,
      ]);
      expect(fa.prefixHash).toBe(fingerprint(b).prefixHash);
      expect(memoStreams.observe('s', fa, tokens, i)).toEqual(wholeStreams.observe('s', fb, tokens, i));
    }
  });

  it('still refuses a body nested too deep under a sealed value', () => {
    const memo = new TailMemo();
    let deep: unknown = 'x';
    for (let i = 0; i < MAX_DEPTH - 3; i++) deep = [deep];
    const tail = `,"tools":[${JSON.stringify(deep)}],"max_tokens":5}`;
    memo.parse('s', Buffer.from(`{"model":"m","messages":[]${tail}`), parse);
    // Fits where it is (127 levels); two levels more do not.
    expect(() =>
      checkBody(memo.parse('s', Buffer.from(`{"model":"m","messages":[]${tail}`), parse)),
    ).not.toThrow();
    const deeper = `,"tools":[[[${JSON.stringify(deep)}]]],"max_tokens":5}`;
    memo.parse('t', Buffer.from(`{"model":"m","messages":[]${deeper}`), parse);
    expect(() =>
      checkBody(memo.parse('t', Buffer.from(`{"model":"m","messages":[{}]${deeper}`), parse)),
    ).toThrow(/nested deeper than 128/);
  });
});

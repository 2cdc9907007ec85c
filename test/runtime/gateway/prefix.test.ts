import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { MessagesBody } from '../../../runtime/gateway/messages.ts';
import { diffStatic, type Fingerprint, fingerprint, PrefixMemo } from '../../../runtime/gateway/prefix.ts';
import { StreamTracker } from '../../../runtime/gateway/streams.ts';

/**
 * The fingerprint as it was computed before streams remembered their prompts (every block
 * serialised and hashed on every call): the oracle the remembering one must match, hash for hash.
 */
function oracle(body: MessagesBody) {
  const strip = (o: unknown): string => {
    if (o === null || typeof o !== 'object' || !('cache_control' in o)) return JSON.stringify(o);
    const { cache_control: _, ...rest } = o;
    return JSON.stringify(rest);
  };
  const blocks: string[] = [`model:${body.model}`];
  let breakpointBlocks = 0;
  const add = (text: string, o?: unknown) => {
    blocks.push(text);
    if ((o as { cache_control?: unknown } | null | undefined)?.cache_control)
      breakpointBlocks = blocks.length;
  };
  const tools: string[] = [];
  for (const t of body.tools ?? []) {
    tools.push(strip(t));
    add(`tool:${tools.at(-1)}`, t);
  }
  const system: string[] = [];
  if (typeof body.system === 'string') system.push(body.system);
  for (const b of Array.isArray(body.system) ? (body.system as Array<{ text?: unknown }>) : []) {
    system.push(typeof b?.text === 'string' ? b.text : strip(b));
    add(`system:${system.at(-1)}`, b);
  }
  if (typeof body.system === 'string') blocks.push(`system:${body.system}`);
  const staticCount = blocks.length;
  for (const m of body.messages) {
    const role = String(m.role);
    if (typeof m.content === 'string') blocks.push(`${role}:${m.content}`);
    else if (Array.isArray(m.content)) for (const b of m.content) add(`${role}:${strip(b)}`, b);
    else blocks.push(`${role}:${strip(m)}`);
  }
  const upTo = Math.max(breakpointBlocks, staticCount);
  const chain = (n: number) => {
    const h = createHash('sha1');
    for (let i = 0; i < n && i < blocks.length; i++) h.update(blocks[i]!).update('\u0000');
    return h.digest('hex').slice(0, 16);
  };
  return {
    prefixHash: chain(upTo),
    staticHash: chain(staticCount),
    tools,
    system,
    prefixBlocks: upTo,
    blocks: blocks.length,
    chain,
  };
}

function expectSame(fp: Fingerprint, body: MessagesBody, step: string) {
  const o = oracle(body);
  expect({ step, ...pick(fp) }).toEqual({ step, ...pick(o) });
  for (let n = 0; n <= o.blocks + 2; n++) expect([step, n, fp.chain(n)]).toEqual([step, n, o.chain(n)]);
}
const pick = (f: Pick<Fingerprint, 'prefixHash' | 'staticHash' | 'tools' | 'system' | 'prefixBlocks'>) => ({
  prefixHash: f.prefixHash,
  staticHash: f.staticHash,
  tools: f.tools,
  system: f.system,
  prefixBlocks: f.prefixBlocks,
});

const EPHEMERAL = { type: 'ephemeral' };
const tool = (name: string, extra: Record<string, unknown> = {}) => ({
  name,
  description: `${name}: ${'does a thing with a file and returns what it found. '.repeat(20)}`,
  input_schema: {
    type: 'object',
    properties: { path: { type: 'string', description: 'the path' }, limit: { type: 'number' } },
    required: ['path'],
  },
  ...extra,
});

function session() {
  const tools = [tool('Read'), tool('Edit'), tool('Bash', { cache_control: EPHEMERAL })];
  const system: unknown = [
    {
      type: 'text',
      text: "You are Claude Code, Anthropic's official CLI for Claude.",
      cache_control: EPHEMERAL,
    },
    { type: 'text', text: 'Rules of the house. Today is 2026-12-02 10:41:55.', cache_control: EPHEMERAL },
  ];
  const messages: MessagesBody['messages'] = [];
  return { tools, system, messages };
}

/** Turn `i` of a conversation: the breakpoint moves to the newest block, as Claude Code does. */
function grow(messages: MessagesBody['messages'], i: number) {
  for (const m of messages)
    if (Array.isArray(m.content))
      for (const b of m.content as Array<Record<string, unknown>>) delete b.cache_control;
  messages.push(
    {
      role: 'assistant',
      content: [{ type: 'tool_use', id: `toolu_${i}`, name: 'Read', input: { path: `/f/${i}` } }],
    },
    {
      role: 'user',
      content: [
        { type: 'tool_result', tool_use_id: `toolu_${i}`, content: `line ${i}\n`.repeat(30) },
        { type: 'text', text: `next, turn ${i}`, cache_control: EPHEMERAL },
      ],
    },
  );
}

const bodyOf = (s: ReturnType<typeof session>, model = 'claude-haiku-4-5'): MessagesBody => ({
  model,
  max_tokens: 100,
  tools: s.tools,
  system: s.system,
  messages: s.messages,
});

/** Fresh objects each call, as a body parsed off the wire is. */
const wire = (b: MessagesBody): MessagesBody => JSON.parse(JSON.stringify(b));

describe('a stream that remembers its prompt fingerprints it exactly as from scratch', () => {
  it('over the turns of a growing conversation, the breakpoint moving each turn', () => {
    const memo = new PrefixMemo();
    const s = session();
    s.messages.push({
      role: 'user',
      content: [{ type: 'text', text: 'fix the bug', cache_control: EPHEMERAL }],
    });
    for (let i = 0; i < 12; i++) {
      const body = wire(bodyOf(s));
      const fp = memo.fingerprint('k', body);
      expectSame(fp, body, `turn ${i}`);
      // Every block of the previous turn is found again: only the newest exchange is serialised.
      expect(fp.reused).toBe(i === 0 ? 0 : fp.prefixBlocks - 3);
      grow(s.messages, i);
    }
  });

  it('when the frozen part changes: a timestamp, a tool, key order, a breakpoint, the model, system as a string', () => {
    const memo = new PrefixMemo();
    const s = session();
    s.messages.push({ role: 'user', content: 'hello' });
    const steps: Array<[string, () => void]> = [
      ['first', () => {}],
      ['same again', () => {}],
      [
        'timestamp in the system prompt',
        () => {
          (s.system as Array<{ text: string }>)[1]!.text =
            'Rules of the house. Today is 2026-12-02 10:42:07.';
        },
      ],
      [
        'a schema deep in a tool',
        () => {
          (s.tools[1]!.input_schema.properties.path as { description: string }).description = 'the path!';
        },
      ],
      [
        'key order of a tool',
        () => {
          const { name, description, input_schema } = s.tools[0]!;
          s.tools[0] = { input_schema, name, description } as (typeof s.tools)[0];
        },
      ],
      [
        'a breakpoint moved off a tool',
        () => delete (s.tools[2] as { cache_control?: unknown }).cache_control,
      ],
      ['a breakpoint moved onto a tool', () => Object.assign(s.tools[0]!, { cache_control: EPHEMERAL })],
      [
        'a null cache_control (stripped, not a breakpoint)',
        () => Object.assign(s.tools[1]!, { cache_control: null }),
      ],
      ['a tool removed', () => s.tools.pop()],
      ['a tool added', () => s.tools.push(tool('Grep'))],
      [
        'system as a string',
        () => {
          s.system = 'one system prompt';
        },
      ],
      [
        'system as a different string',
        () => {
          s.system = 'one system prompt.';
        },
      ],
      [
        'system back to blocks',
        () => {
          s.system = [{ type: 'text', text: 'one system prompt.' }];
        },
      ],
      [
        'a system block without text',
        () => {
          s.system = [{ type: 'image', source: { data: 'x' } }];
        },
      ],
      [
        'no system',
        () => {
          s.system = undefined;
        },
      ],
      [
        'no tools',
        () => {
          s.tools = [];
        },
      ],
    ];
    for (const [step, change] of steps) {
      change();
      const body = wire(bodyOf(s));
      expectSame(memo.fingerprint('k', body), body, step);
    }
    const body = wire(bodyOf(s, 'claude-sonnet-4-5'));
    expectSame(memo.fingerprint('k', body), body, 'the model');
  });

  it('when the conversation is edited, cut short, or its breakpoint moves back', () => {
    const memo = new PrefixMemo();
    const s = session();
    s.messages.push({ role: 'user', content: [{ type: 'text', text: 'start', cache_control: EPHEMERAL }] });
    for (let i = 0; i < 4; i++) grow(s.messages, i);
    const call = (step: string) => {
      const body = wire(bodyOf(s));
      expectSame(memo.fingerprint('k', body), body, step);
    };
    call('four turns');
    (s.messages[3]!.content as Array<{ content: string }>)[0]!.content = 'edited result';
    call('a message in the middle edited');
    for (const m of s.messages)
      if (Array.isArray(m.content))
        for (const b of m.content as Array<Record<string, unknown>>) delete b.cache_control;
    (s.messages[2]!.content as Array<Record<string, unknown>>)[0]!.cache_control = EPHEMERAL;
    call('the breakpoint moved back to an earlier message');
    s.messages.splice(3);
    call('the conversation cut short (compacted)');
    s.messages.push(
      { role: 'user', content: 'a string turn' },
      { role: 'assistant', content: { odd: 'shape' } },
    );
    call('string content and an object as content');
    s.messages.length = 0;
    s.messages.push({ role: 'system', content: 'mid-conversation system' });
    call('messages replaced');
  });

  it('when the caller changes its own objects in place and sends them again (a workflow reusing them)', () => {
    const memo = new PrefixMemo();
    const s = session();
    s.messages.push({ role: 'user', content: [{ type: 'text', text: 'hi', cache_control: EPHEMERAL }] });
    const body = bodyOf(s);
    expectSame(memo.fingerprint('k', body), body, 'first');
    s.tools[0]!.description = `${s.tools[0]!.description}!`;
    const changed = memo.fingerprint('k', body);
    expectSame(changed, body, 'a tool changed in place');
    expect(changed.reused).toBe(1); // the model only
    (s.messages[0]!.content as Array<{ text: string }>)[0]!.text = 'ho';
    expectSame(memo.fingerprint('k', body), body, 'a message changed in place');
    expectSame(memo.fingerprint('k', body), body, 'unchanged, same objects');
  });

  it('with values JSON would serialise differently: undefined, Date, NaN, -0, toJSON, class instances', () => {
    const memo = new PrefixMemo();
    const s = session();
    s.messages.push({ role: 'user', content: [{ type: 'text', text: 'hi', cache_control: EPHEMERAL }] });
    class Box {
      constructor(readonly v: number) {}
    }
    const values: Array<[string, unknown]> = [
      ['undefined', undefined],
      ['a Date', new Date(0)],
      ['another Date', new Date(1)],
      ['NaN', Number.NaN],
      ['null', null],
      ['-0', -0],
      ['0', 0],
      ['toJSON', { toJSON: () => 'x' }],
      ['a class instance', new Box(1)],
      ['another instance', new Box(2)],
      ['a nested array', [[1, [2, { a: 'b' }]], []]],
      ['a nested cache_control (kept)', { cache_control: EPHEMERAL }],
      ['a nested cache_control changed', { cache_control: { type: 'ephemeral', ttl: '1h' } }],
    ];
    for (const [step, v] of values) {
      Object.assign(s.tools[0]!, { extra: v });
      const body = bodyOf(s);
      expectSame(memo.fingerprint('k', body), body, step);
      expectSame(memo.fingerprint('k', body), body, `${step}, again`);
    }
    s.tools.push(undefined as never);
    const body = bodyOf(s);
    expectSame(memo.fingerprint('k', body), body, 'an undefined tool');
    expectSame(memo.fingerprint('k', body), body, 'an undefined tool, again');
  });

  it('when an agent and its subagents take turns in one stream, each continuing its own prompt', () => {
    const memo = new PrefixMemo();
    const agents = ['main', 'explore', 'plan', 'review'].map((name, i) => {
      const s = session();
      s.tools = s.tools.slice(0, 1 + (i % 3));
      s.system = [{ type: 'text', text: `You are the ${name} agent.`, cache_control: EPHEMERAL }];
      s.messages.push({ role: 'user', content: [{ type: 'text', text: 'go', cache_control: EPHEMERAL }] });
      return s;
    });
    for (let turn = 0; turn < 4; turn++)
      for (const [i, s] of agents.entries()) {
        const body = wire(bodyOf(s));
        const fp = memo.fingerprint('session', body);
        expectSame(fp, body, `agent ${i} turn ${turn}`);
        // Four prompts are kept per stream: each agent finds its own previous turn.
        if (turn > 0) expect(fp.reused).toBe(fp.prefixBlocks - 3);
        grow(s.messages, turn);
      }
  });

  it('for many streams at once, beyond what it keeps', () => {
    const memo = new PrefixMemo(2, 200_000);
    const streams = Array.from({ length: 5 }, () => {
      const s = session();
      s.messages.push({ role: 'user', content: [{ type: 'text', text: 'go', cache_control: EPHEMERAL }] });
      return s;
    });
    for (let turn = 0; turn < 4; turn++)
      for (const [i, s] of streams.entries()) {
        const body = wire(bodyOf(s));
        expectSame(memo.fingerprint(`k${i % 3}`, body), body, `stream ${i} turn ${turn}`);
        grow(s.messages, turn);
      }
  });

  it('gives the same answer as fingerprint() with no memory', () => {
    const s = session();
    s.messages.push({ role: 'user', content: 'hi' });
    const body = wire(bodyOf(s));
    expectSame(fingerprint(body), body, 'from scratch');
  });
});

describe('drift through a stream tracker that remembers prompts', () => {
  it('names the changed character of a timestamp in the system prompt, on the next call', () => {
    const streams = new StreamTracker();
    const s = session();
    s.messages.push({ role: 'user', content: 'hi' });
    const tokens = { input: 10, cacheWrite5m: 0, cacheWrite1h: 0, cacheRead: 0, output: 1 };
    const first = streams.fingerprint('k', wire(bodyOf(s)));
    expect(streams.drift('k', first)).toBeUndefined();
    streams.observe('k', first, tokens, 0);
    const again = streams.fingerprint('k', wire(bodyOf(s)));
    expect(streams.drift('k', again)).toBeUndefined();
    streams.observe('k', again, tokens, 1);
    (s.system as Array<{ text: string }>)[1]!.text = 'Rules of the house. Today is 2026-12-02 10:42:07.';
    const drifted = streams.fingerprint('k', wire(bodyOf(s)));
    const drift = streams.drift('k', drifted);
    expect(drift?.block).toBe('system[1]');
    expect(drift?.description).toBe('system[1] changed at character 44: "2:07." was "1:55."');
    expect(diffStatic(again, drifted)).toEqual(drift);
  });
});

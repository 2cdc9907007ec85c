import { describe, expect, it } from 'vitest';
import { messageUsage } from '../../adapters/anthropic/usage.ts';

/**
 * `messageUsage` reads a Messages answer's `usage` from the end of its bytes (the API writes it
 * last) without parsing the rest; whatever it finds must be what parsing the whole answer finds.
 */

const whole = (b: Buffer) => (JSON.parse(b.toString('utf8')) as { usage?: unknown }).usage;
const buf = (s: string) => Buffer.from(s, 'utf8');

const USAGE = {
  input_tokens: 12,
  cache_creation_input_tokens: 3,
  cache_read_input_tokens: 40,
  cache_creation: { ephemeral_5m_input_tokens: 1, ephemeral_1h_input_tokens: 2 },
  output_tokens: 7,
  server_tool_use: { web_search_requests: 1 },
  service_tier: 'standard',
};

const answer = (content: unknown[], usage: unknown = USAGE) => ({
  id: 'msg_01',
  type: 'message',
  role: 'assistant',
  model: 'claude-haiku-4-5',
  content,
  stop_reason: 'end_turn',
  stop_sequence: null,
  usage,
});

describe('messageUsage', () => {
  it('reads the last member of an answer as the API writes it, nested objects included', () => {
    const b = buf(JSON.stringify(answer([{ type: 'text', text: 'hi' }])));
    expect(messageUsage(b)).toEqual(USAGE);
  });

  it('is not fooled by a "usage" inside the text or a tool input, quotes and backslashes escaped', () => {
    const tricky = [
      { type: 'text', text: 'a "usage":{"input_tokens":999999} and a \\ backslash "}' },
      { type: 'tool_use', id: 't', name: 'x', input: { usage: { input_tokens: 5 }, s: 'ends with \\' } },
    ];
    const b = buf(JSON.stringify(answer(tricky)));
    expect(messageUsage(b)).toEqual(USAGE);
    // usage not last: a tool input ending the answer has its own "usage" — parsed whole, the real one.
    const reordered = { ...answer([]), usage: { input_tokens: 1, output_tokens: 2 }, extra: { usage: {} } };
    const r = buf(JSON.stringify(reordered));
    expect(messageUsage(r)).toEqual({ input_tokens: 1, output_tokens: 2 });
  });

  it('a last member that only ends in "usage" (xusage, an escaped key) is not taken for it', () => {
    const b = buf('{"usage":{"input_tokens":1},"xusage":{"input_tokens":2}}');
    expect(messageUsage(b)).toEqual({ input_tokens: 1 });
    const e = buf('{"usage":{"input_tokens":1},"a\\"usage":{"input_tokens":2}}');
    expect(messageUsage(e)).toEqual({ input_tokens: 1 });
    const nested = buf('{"usage":{"input_tokens":1},"z":{"usage":{"input_tokens":2}}}');
    expect(messageUsage(nested)).toEqual({ input_tokens: 1 });
  });

  it('pretty-printed, with whitespace everywhere JSON allows it', () => {
    const b = buf(`${JSON.stringify(answer([{ type: 'text', text: 'x' }]), null, 2)}\n\n`);
    expect(messageUsage(b)).toEqual(USAGE);
  });

  it('an answer without usage, or whose usage is not an object, gives what parsing gives', () => {
    expect(messageUsage(buf('{"id":"m","content":[]}'))).toBeUndefined();
    expect(messageUsage(buf('{"id":"m","usage":null}'))).toBeUndefined();
    expect(messageUsage(buf('{"usage":{}}'))).toEqual({});
    expect(() => messageUsage(buf('not json'))).toThrow(SyntaxError);
  });

  it('agrees with parsing the whole answer on many generated answers', () => {
    let seed = 7;
    const rand = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed / 0x7fffffff;
    };
    const alphabet = ['a', ' ', '"', '\\', '{', '}', '[', ']', ':', ',', 'usage', 'é', '\n', '\u2028', '😀'];
    const str = () =>
      Array.from(
        { length: Math.floor(rand() * 12) },
        () => alphabet[Math.floor(rand() * alphabet.length)],
      ).join('');
    const value = (depth: number): unknown => {
      const r = rand();
      if (depth > 2 || r < 0.3) return str();
      if (r < 0.45) return Math.floor(rand() * 1000);
      if (r < 0.5) return null;
      if (r < 0.75) return Array.from({ length: Math.floor(rand() * 3) }, () => value(depth + 1));
      const o: Record<string, unknown> = {};
      for (let i = 0; i < rand() * 4; i++) o[rand() < 0.2 ? 'usage' : str()] = value(depth + 1);
      return o;
    };
    for (let n = 0; n < 500; n++) {
      const content = [{ type: 'text', text: str() }, value(0)];
      const usage = rand() < 0.9 ? { input_tokens: n, output_tokens: 1, cache_creation: value(1) } : value(1);
      const doc: Record<string, unknown> = answer(content, usage);
      if (rand() < 0.1) doc[str()] = value(0); // usage not the last member
      const b = buf(JSON.stringify(doc, null, rand() < 0.2 ? 1 : undefined));
      expect(messageUsage(b)).toEqual(whole(b) ?? undefined);
    }
  });
});

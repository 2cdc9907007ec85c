import { describe, expect, it } from 'vitest';
import { StreamUsage } from '../../adapters/anthropic/usage.ts';

/**
 * The Messages stream reader on the bytes as they come: usage from `message_start` and the final
 * `message_delta`, an estimate from the deltas for a stream cut off, an `error` event's type —
 * whatever the chunk boundaries, line endings or multi-byte characters.
 */
const sse = (type: string, data: unknown, nl = '\n') =>
  `event: ${type}${nl}data: ${JSON.stringify(data)}${nl}${nl}`;

function stream(nl = '\n', final = true): string {
  return [
    sse(
      'message_start',
      {
        type: 'message_start',
        message: {
          id: 'msg_1',
          content: [],
          model: 'claude-haiku-4-5',
          usage: {
            input_tokens: 12,
            cache_creation_input_tokens: 0,
            cache_read_input_tokens: 30,
            output_tokens: 1,
          },
        },
      },
      nl,
    ),
    sse(
      'content_block_start',
      { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } },
      nl,
    ),
    sse('ping', { type: 'ping' }, nl),
    sse(
      'content_block_delta',
      { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'héllo — 世界 🌍' } },
      nl,
    ),
    sse(
      'content_block_delta',
      { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: ' again' } },
      nl,
    ),
    sse('content_block_stop', { type: 'content_block_stop', index: 0 }, nl),
    ...(final
      ? [
          sse(
            'message_delta',
            { type: 'message_delta', delta: { stop_reason: 'end_turn' }, usage: { output_tokens: 9 } },
            nl,
          ),
          sse('message_stop', { type: 'message_stop' }, nl),
        ]
      : []),
  ].join('');
}

function read(text: string, cut: number[]): StreamUsage {
  const bytes = Buffer.from(text);
  const r = new StreamUsage();
  let at = 0;
  for (const c of [...cut, bytes.length]) {
    r.feed(bytes.subarray(at, c));
    at = c;
  }
  return r;
}

describe('the Anthropic stream usage reader', () => {
  it('reads the same usage however the bytes are cut, with \\n or \\r\\n line ends', () => {
    for (const nl of ['\n', '\r\n']) {
      const text = stream(nl);
      const whole = read(text, []);
      expect(whole.complete).toBe(true);
      expect(whole.usage().tokens).toEqual({
        input: 12,
        cacheWrite5m: 0,
        cacheWrite1h: 0,
        cacheRead: 30,
        output: 9,
      });
      const size = Buffer.byteLength(text);
      for (let cut = 1; cut < size; cut++) {
        const r = read(text, [cut]);
        expect(r.usage().tokens, `cut at ${cut}`).toEqual(whole.usage().tokens);
        expect(r.complete).toBe(true);
      }
      // Every byte its own chunk: multi-byte characters split too.
      const each = read(
        text,
        Array.from({ length: size - 1 }, (_, i) => i + 1),
      );
      expect(each.usage().tokens).toEqual(whole.usage().tokens);
    }
  });

  it('estimates the output of a stream cut off before its final count from the deltas seen', () => {
    const r = read(stream('\n', false), [100, 333]);
    expect(r.complete).toBe(false);
    const out = r.usage().tokens.output;
    // Two text deltas' data bytes over 4, above the 1 that message_start said.
    expect(out).toBeGreaterThan(30);
    expect(out).toBeLessThan(60);
  });

  it("takes an error event's type, and ignores events it does not bill", () => {
    const r = read(
      `${sse('message_start', { type: 'message_start', message: { usage: { input_tokens: 5 } } })}event: some_new_event\ndata: {"x":1}\n\n${sse('error', { type: 'error', error: { type: 'overloaded_error', message: 'busy' } })}`,
      [7],
    );
    expect(r.errorType).toBe('overloaded_error');
    expect(r.usage().tokens.input).toBe(5);
  });

  it('finds where the final event starts wherever the bytes are cut: the client never has it before settlement', () => {
    for (const nl of ['\n', '\r\n']) {
      const text = stream(nl);
      const bytes = Buffer.from(text);
      const lineStart = bytes.indexOf('event: message_stop');
      const lineEnd = bytes.indexOf('\n', lineStart);
      for (let cut = 0; cut <= bytes.length; cut++) {
        // What the relay passes on: chunks until one holds the final event, then that chunk up to it.
        const r = new StreamUsage();
        let passed = 0;
        for (const chunk of [bytes.subarray(0, cut), bytes.subarray(cut)]) {
          r.feed(chunk);
          const stop = r.finalAt(chunk);
          if (stop === -1) {
            passed += chunk.length;
            continue;
          }
          passed += stop;
          break;
        }
        expect(passed, `cut at ${cut}`).toBeLessThanOrEqual(lineEnd);
        expect(passed, `cut at ${cut}`).toBeGreaterThanOrEqual(Math.min(cut, lineStart));
        expect(r.errorType).toBeUndefined();
      }
    }
  });

  it("takes message_stop only as an event, not inside a delta's text", () => {
    const text = sse('content_block_delta', {
      type: 'content_block_delta',
      delta: { type: 'text_delta', text: 'event: message_stop' },
    });
    const r = new StreamUsage();
    const chunk = Buffer.from(text);
    r.feed(chunk);
    expect(r.finalAt(chunk)).toBe(-1);
  });
});

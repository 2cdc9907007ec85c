import { describe, expect, it } from 'vitest';
import { type ApiUsage, StreamUsage, usageOf } from '../../adapters/anthropic/usage.ts';

/**
 * The stream reader parses only the `usage` object of message_delta (its last member) and of
 * message_start's `message` (the line's last member, usage its last), found from the end of the
 * line; whatever it finds must be what parsing every line whole finds.
 */

/** The reference: every usage-bearing line parsed whole, the cumulative rule applied. */
function reference(events: { event: string; data: unknown }[]): ApiUsage {
  let api: Record<string, unknown> = {};
  for (const { event, data } of events) {
    const d = data as { message?: { usage?: ApiUsage }; usage?: ApiUsage };
    if (event === 'message_start') api = { ...d.message?.usage };
    if (event === 'message_delta') {
      for (const [k, v] of Object.entries(d.usage ?? {})) if (v !== null && v !== undefined) api[k] = v;
    }
  }
  return api as ApiUsage;
}

const sse = (events: { event: string; data: unknown }[], space: number | undefined) =>
  events
    .map((e) => `event: ${e.event}\ndata: ${JSON.stringify(e.data, null, space)?.replace(/\n/g, ' ')}\n\n`)
    .join('');

describe('StreamUsage reads usage from the end of its lines', () => {
  it('agrees with parsing every line whole on many generated streams, fed in random pieces', () => {
    let seed = 11;
    const rand = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed / 0x7fffffff;
    };
    const alphabet = ['a', ' ', '"', '\\', '{', '}', ':', ',', 'usage', 'é', '😀'];
    const str = () =>
      Array.from(
        { length: Math.floor(rand() * 10) },
        () => alphabet[Math.floor(rand() * alphabet.length)],
      ).join('');
    const usage = (n: number): unknown =>
      rand() < 0.85
        ? {
            input_tokens: n,
            cache_read_input_tokens: rand() < 0.5 ? null : n * 2,
            cache_creation:
              rand() < 0.5 ? { ephemeral_5m_input_tokens: 1, ephemeral_1h_input_tokens: n } : null,
            output_tokens: Math.floor(rand() * 50),
            ...(rand() < 0.2
              ? { iterations: [{ type: 'x', model: str(), input_tokens: 1, output_tokens: 2 }] }
              : {}),
          }
        : rand() < 0.5
          ? null
          : str();
    for (let n = 0; n < 300; n++) {
      const message: Record<string, unknown> = {
        id: 'msg',
        type: 'message',
        model: str(),
        content:
          rand() < 0.5
            ? []
            : [
                { type: 'text', text: str() },
                { type: 'x', usage: str() },
              ],
        stop_reason: null,
        usage: usage(n),
      };
      if (rand() < 0.1) message[str()] = { usage: { input_tokens: 999 } }; // usage not the last member
      const start: Record<string, unknown> = { type: 'message_start', message };
      if (rand() < 0.1) start.z = { usage: { input_tokens: 777 } }; // message not the last member
      const delta: Record<string, unknown> = {
        type: 'message_delta',
        delta: { stop_reason: 'end_turn', text: str() },
        usage: usage(n),
      };
      if (rand() < 0.1) delta[str()] = { usage: { output_tokens: 555 } };
      const events = [
        { event: 'message_start', data: start },
        { event: 'content_block_delta', data: { type: 'content_block_delta', delta: { text: str() } } },
        { event: 'message_delta', data: delta },
        { event: 'message_stop', data: { type: 'message_stop' } },
      ];
      const bytes = Buffer.from(sse(events, rand() < 0.2 ? 1 : undefined));
      const reader = new StreamUsage();
      for (let at = 0; at < bytes.length; ) {
        const step = 1 + Math.floor(rand() * 200);
        reader.feed(bytes.subarray(at, at + step));
        at += step;
      }
      const expected = usageOf(reference(events));
      expect(reader.usage()).toEqual(expected);
      expect(reader.complete).toBe(true);
    }
  });
});

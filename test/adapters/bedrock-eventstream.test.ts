import { describe, expect, it } from 'vitest';
import {
  chunkMessage,
  EventStreamDecoder,
  EventStreamToSse,
  encodeMessage,
  exceptionMessage,
  SseToEventStream,
} from '../../adapters/bedrock/eventstream.ts';

const EVENTS = [
  { type: 'message_start', message: { id: 'msg_1', usage: { input_tokens: 12, output_tokens: 1 } } },
  { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } },
  { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'héllo — wörld' } },
  { type: 'content_block_stop', index: 0 },
  { type: 'message_delta', delta: { stop_reason: 'end_turn' }, usage: { output_tokens: 5 } },
  { type: 'message_stop' },
];
const SSE = EVENTS.map((e) => `event: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`).join('');

function bytewise<T>(bytes: Uint8Array, feed: (b: Uint8Array) => T): T[] {
  const out: T[] = [];
  for (let i = 0; i < bytes.length; i++) out.push(feed(bytes.subarray(i, i + 1)));
  return out;
}

describe('AWS event-stream codec', () => {
  it('round-trips a message with string headers and a binary payload', () => {
    const body = Buffer.from([0, 1, 2, 255, 254]);
    const frame = encodeMessage({ ':event-type': 'chunk', ':message-type': 'event' }, body);
    const [m] = new EventStreamDecoder().push(frame);
    expect(m?.headers).toEqual({ ':event-type': 'chunk', ':message-type': 'event' });
    expect(Buffer.from(m!.body)).toEqual(body);
  });

  it('reassembles messages fed one byte at a time', () => {
    const frames = Buffer.concat(EVENTS.map((e) => chunkMessage(JSON.stringify(e))));
    const dec = new EventStreamDecoder();
    const got = bytewise(frames, (b) => dec.push(b)).flat();
    expect(got).toHaveLength(EVENTS.length);
    const payloads = got.map((m) => JSON.parse(Buffer.from(m.body).toString()).bytes as string);
    expect(payloads.map((p) => JSON.parse(Buffer.from(p, 'base64').toString()))).toEqual(EVENTS);
    expect(dec.pending).toBe(0);
  });

  it('rejects a frame whose message CRC does not match', () => {
    const frame = Buffer.from(chunkMessage('{"type":"ping"}'));
    frame[frame.length - 10]! ^= 0xff;
    expect(() => new EventStreamDecoder().push(frame)).toThrow(/checksum/i);
  });

  it('rejects a frame whose prelude CRC does not match, before waiting for its length', () => {
    const frame = Buffer.from(chunkMessage('{"type":"ping"}'));
    frame[2]! ^= 0x7f;
    expect(() => new EventStreamDecoder().push(frame.subarray(0, 12))).toThrow(/prelude CRC/);
  });
});

describe('Bedrock event-stream → Anthropic SSE', () => {
  it('turns each chunk into one SSE event named by its type, whatever the chunking', () => {
    const frames = Buffer.concat(EVENTS.map((e) => chunkMessage(JSON.stringify(e))));
    const t = new EventStreamToSse();
    expect(bytewise(frames, (b) => t.push(b)).join('')).toBe(SSE);
    expect(t.incomplete).toBe(false);
  });

  it('turns an exception message into an Anthropic error event of the matching type', () => {
    const t = new EventStreamToSse();
    const text = t.push(exceptionMessage('throttlingException', 'Too many tokens, please wait.'));
    expect(text).toBe(
      `event: error\ndata: ${JSON.stringify({ type: 'error', error: { type: 'rate_limit_error', message: 'Too many tokens, please wait.' } })}\n\n`,
    );
  });

  it('says when the stream stopped inside a message', () => {
    const t = new EventStreamToSse();
    t.push(chunkMessage('{"type":"ping"}').subarray(0, 20));
    expect(t.incomplete).toBe(true);
  });
});

describe('Anthropic SSE → Bedrock event-stream', () => {
  it('writes one chunk per SSE event from SSE cut one byte at a time, and round-trips', () => {
    const enc = new SseToEventStream();
    const frames = Buffer.concat([...bytewise(Buffer.from(SSE), (b) => enc.push(b)), enc.end()]);
    expect(new EventStreamToSse().push(frames)).toBe(SSE);
  });

  it('adds what the stop hook returns to message_stop (Bedrock invocation metrics)', () => {
    const enc = new SseToEventStream((e) => ({
      ...e,
      'amazon-bedrock-invocationMetrics': { outputTokenCount: 5 },
    }));
    const back = new EventStreamToSse().push(enc.push(SSE));
    expect(back).toContain(
      'event: message_stop\ndata: {"type":"message_stop","amazon-bedrock-invocationMetrics":{"outputTokenCount":5}}',
    );
  });

  it('turns an SSE error event into an exception message with the Bedrock exception type', () => {
    const enc = new SseToEventStream();
    const err = { type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } };
    const [m] = new EventStreamDecoder().push(enc.push(`event: error\ndata: ${JSON.stringify(err)}\n\n`));
    expect(m?.headers).toEqual({
      ':exception-type': 'serviceUnavailableException',
      ':content-type': 'application/json',
      ':message-type': 'exception',
    });
    expect(JSON.parse(Buffer.from(m!.body).toString())).toEqual({ message: 'Overloaded' });
  });

  it('turns an unreadable SSE event into an internalServerException, not a broken frame', () => {
    const [m] = new EventStreamDecoder().push(
      new SseToEventStream().push('event: ping\ndata: {not json\n\n'),
    );
    expect(m?.headers[':exception-type']).toBe('internalServerException');
  });

  it('flushes a last event that came without its blank line', () => {
    const enc = new SseToEventStream();
    const head = enc.push('event: message_stop\ndata: {"type":"message_stop"}');
    expect(head.length).toBe(0);
    expect(new EventStreamToSse().push(enc.end())).toBe(
      'event: message_stop\ndata: {"type":"message_stop"}\n\n',
    );
  });
});

/**
 * AWS event-stream framing (`application/vnd.amazon.eventstream`), the wire format of Bedrock's
 * InvokeModelWithResponseStream, and the two transcoders between it and Anthropic SSE.
 *
 * A message is `[total length u32][headers length u32][prelude CRC32][headers][payload][message
 * CRC32]`, big-endian; Bedrock's headers are strings: `:message-type` (`event` | `exception`),
 * `:event-type` (`chunk`) or `:exception-type` (`throttlingException`, …), `:content-type`
 * (`application/json`). A chunk's payload is `{"bytes":"<base64 of one Anthropic event JSON>"}`;
 * an exception's is `{"message":"…"}`. Sources: docs/research/bedrock-2026-12.md §1.
 */
import { StringDecoder } from 'node:string_decoder';
import { crc32 } from 'node:zlib';
import { EventStreamCodec, type MessageHeaders } from '@smithy/eventstream-codec';
import { fromUtf8, toUtf8 } from '@smithy/util-utf8';
import { StreamUsage } from '../anthropic/usage.ts';
import { anthropicTypeOfException, exceptionTypeOfAnthropic } from './errors.ts';

/** One decoded message, its headers reduced to strings (the only kind Bedrock sends). */
export interface EventMessage {
  headers: Record<string, string>;
  body: Uint8Array;
}

const codec = new EventStreamCodec(toUtf8, fromUtf8);
const PRELUDE = 12;
/** Bedrock's own ceiling is far below this; a larger length is a corrupt prelude, not a message. */
const MAX_MESSAGE = 24 * 1024 * 1024;

/** Encodes one message with string headers. */
export function encodeMessage(headers: Record<string, string>, body: Uint8Array): Uint8Array {
  const typed: MessageHeaders = {};
  for (const [k, v] of Object.entries(headers)) typed[k] = { type: 'string', value: v };
  return codec.encode({ headers: typed, body });
}

/**
 * Reassembles messages from chunks cut anywhere (one byte at a time included). A bad CRC or an
 * impossible length throws: a corrupt stream is never half-read as if it were whole.
 */
export class EventStreamDecoder {
  private buf: Buffer = Buffer.alloc(0);

  /** Feeds bytes; returns every message they complete, in order. */
  push(chunk: Uint8Array): EventMessage[] {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : Buffer.from(chunk);
    const out: EventMessage[] = [];
    while (this.buf.length >= PRELUDE) {
      const total = this.buf.readUInt32BE(0);
      if (crc32(this.buf.subarray(0, 8)) !== this.buf.readUInt32BE(8)) {
        throw new Error('event stream: the prelude CRC does not match (corrupt frame)');
      }
      if (total < PRELUDE + 4 || total > MAX_MESSAGE) {
        throw new Error(`event stream: impossible message length ${total}`);
      }
      if (this.buf.length < total) break;
      const frame = this.buf.subarray(0, total);
      this.buf = this.buf.subarray(total);
      const msg = codec.decode(frame);
      const headers: Record<string, string> = {};
      for (const [k, h] of Object.entries(msg.headers)) headers[k] = String(h.value);
      out.push({ headers, body: msg.body });
    }
    return out;
  }

  /** Bytes held back waiting for the rest of a message (0 when the stream ended cleanly). */
  get pending(): number {
    return this.buf.length;
  }
}

const JSON_HEADERS = { ':content-type': 'application/json' };

/** A `chunk` event carrying one Anthropic event JSON. */
export function chunkMessage(eventJson: string): Uint8Array {
  const payload = JSON.stringify({ bytes: Buffer.from(eventJson, 'utf8').toString('base64') });
  return encodeMessage(
    { ':event-type': 'chunk', ...JSON_HEADERS, ':message-type': 'event' },
    Buffer.from(payload, 'utf8'),
  );
}

/** An `exception` message (`throttlingException`, …) with Bedrock's `{"message"}` payload. */
export function exceptionMessage(exceptionType: string, message: string): Uint8Array {
  return encodeMessage(
    { ':exception-type': exceptionType, ...JSON_HEADERS, ':message-type': 'exception' },
    Buffer.from(JSON.stringify({ message }), 'utf8'),
  );
}

const sse = (type: string, json: string) => `event: ${type}\ndata: ${json}\n\n`;

/**
 * Bedrock event-stream → Anthropic SSE bytes, incrementally: each `chunk` becomes
 * `event: <its type>\ndata: <its JSON>\n\n`; an `exception` message becomes an Anthropic
 * `event: error` with the matching error type. Bedrock's `amazon-bedrock-invocationMetrics` stays
 * in the event JSON (readers ignore it).
 */
export class EventStreamToSse {
  private readonly decoder = new EventStreamDecoder();

  /** Feeds event-stream bytes; returns the SSE text they complete ('' if none yet). */
  push(chunk: Uint8Array): string {
    let out = '';
    for (const m of this.decoder.push(chunk)) out += this.convert(m);
    return out;
  }

  /** True when bytes of an unfinished message are held back. */
  get incomplete(): boolean {
    return this.decoder.pending > 0;
  }

  private convert(m: EventMessage): string {
    const text = Buffer.from(m.body).toString('utf8');
    const kind = m.headers[':message-type'];
    if (kind === 'exception' || kind === 'error') {
      const exception = m.headers[':exception-type'] ?? m.headers[':error-code'] ?? 'internalServerException';
      const message = messageOf(text) ?? m.headers[':error-message'] ?? exception;
      const error = { type: anthropicTypeOfException(exception), message };
      return sse('error', JSON.stringify({ type: 'error', error }));
    }
    if (m.headers[':event-type'] !== 'chunk') return '';
    const bytes = (JSON.parse(text) as { bytes?: unknown }).bytes;
    if (typeof bytes !== 'string') throw new Error('event stream: a chunk without its "bytes"');
    const json = Buffer.from(bytes, 'base64').toString('utf8');
    const type = (JSON.parse(json) as { type?: unknown }).type;
    if (typeof type !== 'string') throw new Error('event stream: a chunk event without a "type"');
    return sse(type, json);
  }
}

function messageOf(text: string): string | undefined {
  try {
    const p = JSON.parse(text) as { message?: unknown; Message?: unknown };
    const m = p.message ?? p.Message;
    return typeof m === 'string' ? m : undefined;
  } catch {
    return undefined;
  }
}

/** What the SSE → event-stream transcoder does with the final `message_stop` event. */
export type FinalHook = (event: Record<string, unknown>) => Record<string, unknown>;

/**
 * Anthropic SSE → Bedrock event-stream frames, for a face that answers in Bedrock's format: it
 * takes SSE bytes cut anywhere and returns whole frames. Every data event becomes a `chunk`; an
 * SSE `error` event becomes an `exception` message typed like Bedrock's (`overloaded_error` →
 * `serviceUnavailableException`, …). `onStop` may add to the `message_stop` event (Bedrock puts
 * its `amazon-bedrock-invocationMetrics` there).
 */
export class SseToEventStream {
  private pending = '';
  private event = '';
  private data: string[] = [];
  /** A UTF-8 character cut between two chunks is held until its last byte comes. */
  private readonly utf8 = new StringDecoder('utf8');

  constructor(private readonly onStop?: FinalHook) {}

  /** Feeds SSE bytes; returns the frames they complete (empty when none yet). */
  push(chunk: Uint8Array | string): Uint8Array {
    this.pending += typeof chunk === 'string' ? chunk : this.utf8.write(Buffer.from(chunk));
    const frames: Uint8Array[] = [];
    let nl = this.pending.indexOf('\n');
    while (nl !== -1) {
      const line = this.pending.slice(0, nl).replace(/\r$/, '');
      this.pending = this.pending.slice(nl + 1);
      if (line === '') {
        const f = this.dispatch();
        if (f) frames.push(f);
      } else if (line.startsWith('event:')) this.event = line.slice(6).trim();
      else if (line.startsWith('data:')) this.data.push(line.slice(5).replace(/^ /, ''));
      nl = this.pending.indexOf('\n');
    }
    return frames.length === 1 ? frames[0]! : Buffer.concat(frames);
  }

  /** Flushes an event left without its blank line at the end of the stream. */
  end(): Uint8Array {
    return this.push('\n\n');
  }

  private dispatch(): Uint8Array | undefined {
    const data = this.data.join('\n');
    const event = this.event;
    this.event = '';
    this.data = [];
    if (!data) return undefined;
    let parsed: Record<string, unknown>;
    try {
      parsed = JSON.parse(data) as Record<string, unknown>;
    } catch {
      // A client must not be handed a frame its SDK cannot decode: say the stream failed.
      return exceptionMessage('internalServerException', 'the upstream stream carried an unreadable event');
    }
    const type = event || (typeof parsed.type === 'string' ? parsed.type : '');
    if (type === 'error') {
      const err = (parsed.error ?? {}) as { type?: string; message?: string };
      return exceptionMessage(exceptionTypeOfAnthropic(err.type ?? 'api_error'), err.message ?? 'error');
    }
    if (type === 'message_stop' && this.onStop) return chunkMessage(JSON.stringify(this.onStop(parsed)));
    return chunkMessage(data);
  }
}

/**
 * What a Bedrock face writes for an Anthropic SSE answer: event-stream frames, the final
 * `message_stop` carrying Bedrock's `amazon-bedrock-invocationMetrics` (token counts read off the
 * stream itself, latencies from `started`, epoch ms).
 */
export class BedrockStreamWriter {
  private readonly usage = new StreamUsage();
  private readonly frames: SseToEventStream;
  private firstByte?: number;

  constructor(
    started: number,
    private readonly clock: () => number = Date.now,
  ) {
    this.frames = new SseToEventStream((event) => {
      const t = this.usage.usage().tokens;
      const now = this.clock();
      const metrics = {
        inputTokenCount: t.input,
        outputTokenCount: t.output,
        invocationLatency: now - started,
        firstByteLatency: (this.firstByte ?? now) - started,
        cacheReadInputTokenCount: t.cacheRead,
        cacheWriteInputTokenCount: t.cacheWrite5m + t.cacheWrite1h,
      };
      return { ...event, 'amazon-bedrock-invocationMetrics': metrics };
    });
  }

  /** Feeds SSE bytes (cut anywhere); returns the frames they complete. */
  push(chunk: Uint8Array): Uint8Array {
    this.firstByte ??= this.clock();
    this.usage.feed(Buffer.from(chunk));
    return this.frames.push(chunk);
  }

  /** At the end of the SSE: the frame of an event left without its blank line, if any. */
  end(): Uint8Array {
    return this.frames.end();
  }
}

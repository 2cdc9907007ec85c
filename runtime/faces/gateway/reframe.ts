import { type Sink, withHeader } from '../../gateway/sink.ts';

/** A whole answer (an error, a JSON message) as a face writes it. */
export interface Whole {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

/** Turns an Anthropic SSE stream into the face's own stream, chunk by chunk. */
export interface StreamCodec {
  readonly contentType: string;
  push(chunk: Buffer): Buffer;
  end(): Buffer;
}

export interface Reframing {
  /** An error answer (status ≥ 400): the Anthropic envelope (a refusal's too) in the face's shape. */
  error(answer: Whole): Whole;
  /** A whole successful answer (a JSON message); as it is when left out. */
  json?(answer: Whole): Whole;
  /** A streamed answer (its headers); passed through when left out or undefined. */
  stream?(headers: Record<string, string>): StreamCodec | undefined;
}

/**
 * A sink that speaks a face's wire format over the call path's, which is always Anthropic's (the
 * JSON message, the SSE stream, the error envelope). Whole answers are held until their end and
 * rewritten at once; a stream is re-framed as its chunks pass, so holding the final event back
 * until the call is settled (forward.ts) still holds on every face.
 */
export function reframed(inner: Sink, how: Reframing): Sink {
  let mode: 'whole-error' | 'whole-json' | 'stream' | 'pass' = 'pass';
  let head: { status: number; headers: Record<string, string> } | undefined;
  const held: Buffer[] = [];
  let codec: StreamCodec | undefined;
  return {
    get gone() {
      return inner.gone;
    },
    head(status, headers) {
      const streamed = headers['content-type']?.includes('text/event-stream') ?? false;
      codec = status < 400 && streamed ? how.stream?.(headers) : undefined;
      if (status >= 400) mode = 'whole-error';
      else if (codec) {
        mode = 'stream';
        inner.head(status, withHeader(headers, 'content-type', codec.contentType));
        return;
      } else if (!streamed && how.json) mode = 'whole-json';
      else mode = 'pass';
      if (mode === 'pass') inner.head(status, headers);
      else head = { status, headers };
    },
    chunk(data) {
      if (mode === 'stream') {
        const out = codec!.push(data);
        if (out.length > 0) inner.chunk(out);
      } else if (mode === 'pass') inner.chunk(data);
      else held.push(data);
    },
    end() {
      if (mode === 'stream') {
        const tail = codec!.end();
        if (tail.length > 0) inner.chunk(tail);
      } else if (mode !== 'pass' && head) {
        const whole = { ...head, body: Buffer.concat(held) };
        const out = mode === 'whole-error' ? how.error(whole) : how.json!(whole);
        inner.head(
          out.status,
          withHeader(out.headers, 'content-type', out.headers['content-type'] ?? 'application/json'),
        );
        inner.chunk(out.body);
      }
      inner.end();
    },
  };
}

import { Transform } from 'node:stream';

/**
 * The response header the OpenAI adapter sets when it asked upstream for
 * `stream_options.include_usage` on the client's behalf. A face that sees it pipes the stream
 * through {@link withoutInjectedUsage} so the client receives what it asked for.
 */
export const USAGE_INJECTED_HEADER = 'x-chokepoint-usage-injected';

const USAGE_NULL = ['"usage":null,', ',"usage":null'];

/**
 * One SSE event as the client would have received it without `include_usage`: the usage chunk
 * (`"choices":[]` with a usage object) is dropped, and the `"usage":null` every other chunk
 * carries is cut out byte for byte. Anything else passes unchanged.
 */
function rewrite(event: string): string {
  const data = event.startsWith('data: ') ? event.slice(6).trimEnd() : undefined;
  if (data === undefined || data === '[DONE]' || !data.includes('"usage"')) return event;
  let parsed: { choices?: unknown[]; usage?: unknown };
  try {
    parsed = JSON.parse(data);
  } catch {
    return event;
  }
  if (Array.isArray(parsed.choices) && parsed.choices.length === 0 && parsed.usage) return '';
  if (parsed.usage !== null) return event;
  for (const u of USAGE_NULL) {
    const at = event.indexOf(u);
    if (at !== -1) return event.slice(0, at) + event.slice(at + u.length);
  }
  return event;
}

/**
 * An incremental transform for a chat completions SSE stream whose `include_usage` the gateway
 * injected: events are cut at their blank-line end across any chunk boundaries, each rewritten
 * by {@link rewrite}. The result is what the upstream would have sent the client had nobody asked
 * for usage.
 *
 * @example res.body.pipe(withoutInjectedUsage()).pipe(clientResponse)
 */
export function withoutInjectedUsage(): Transform {
  const strip = new UsageStripper();
  return new Transform({
    transform(chunk: Buffer, _enc, done) {
      const out = strip.push(chunk);
      done(null, out.length ? out : undefined);
    },
    flush(done) {
      const out = strip.end();
      done(null, out.length ? out : undefined);
    },
  });
}

/** The same, called chunk by chunk (a face's sink): `push` each chunk, `end` once. */
export class UsageStripper {
  private pending = '';
  private readonly decoder = new TextDecoder('utf-8');

  push(chunk: Buffer): Buffer {
    this.pending += this.decoder.decode(chunk, { stream: true });
    let out = '';
    let end = this.pending.indexOf('\n\n');
    while (end !== -1) {
      out += rewrite(this.pending.slice(0, end + 2));
      this.pending = this.pending.slice(end + 2);
      end = this.pending.indexOf('\n\n');
    }
    return Buffer.from(out);
  }

  end(): Buffer {
    this.pending += this.decoder.decode();
    const out = this.pending ? rewrite(this.pending) : '';
    this.pending = '';
    return Buffer.from(out);
  }
}

/**
 * The body to send upstream for a streamed chat completion: unchanged unless it streams without
 * `stream_options.include_usage: true`, then with it set (and `injected: true`). Other fields and
 * their order are kept; only `stream_options` is added or completed.
 */
export function injectUsage(body: Buffer): { body: Buffer; injected: boolean } {
  let parsed: Record<string, unknown>;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    return { body, injected: false };
  }
  if (typeof parsed !== 'object' || parsed === null || parsed.stream !== true)
    return { body, injected: false };
  const so = parsed.stream_options;
  if (typeof so === 'object' && so !== null && (so as { include_usage?: unknown }).include_usage === true) {
    return { body, injected: false };
  }
  const options = typeof so === 'object' && so !== null ? so : {};
  const next = { ...parsed, stream_options: { ...options, include_usage: true } };
  return { body: Buffer.from(JSON.stringify(next)), injected: true };
}

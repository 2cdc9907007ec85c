/**
 * Reads an Anthropic SSE stream incrementally, over arbitrary chunk boundaries: bytes are held
 * until an event's terminating blank line arrives and only then decoded, so a multi-byte UTF-8
 * character split across chunks is never mangled, and the events seen do not depend on how the
 * bytes were cut.
 */
export interface SseEvent {
  event: string;
  data: unknown;
}

const LF = 0x0a;
const CR = 0x0d;

export class SseReader {
  private held: Buffer = Buffer.alloc(0);

  /** The whole events completed by this chunk, in order. */
  push(chunk: Buffer): SseEvent[] {
    this.held = this.held.length ? Buffer.concat([this.held, chunk]) : chunk;
    const out: SseEvent[] = [];
    let start = 0;
    for (;;) {
      const end = blankLine(this.held, start);
      if (end === undefined) break;
      const event = parse(this.held.subarray(start, end.at).toString('utf8'));
      if (event) out.push(event);
      start = end.next;
    }
    this.held = start === 0 ? this.held : Buffer.from(this.held.subarray(start));
    return out;
  }

  /**
   * The stream ended: the last event, if it came whole without its blank line. A fragment cut off
   * mid-event is dropped: the stream broke off, which the translators report themselves.
   */
  end(): SseEvent[] {
    const rest = this.held.toString('utf8');
    this.held = Buffer.alloc(0);
    const event = rest.trim() ? parse(rest) : undefined;
    return event && event !== UNREADABLE ? [event] : [];
  }
}

/** Where the next blank line (LF LF, or CR LF CR LF) at or after `from` starts and ends. */
function blankLine(b: Buffer, from: number): { at: number; next: number } | undefined {
  for (let i = from; i < b.length; i++) {
    if (b[i] !== LF) continue;
    if (b[i + 1] === LF) return { at: i, next: i + 2 };
    if (b[i + 1] === CR && b[i + 2] === LF) return { at: i, next: i + 3 };
  }
  return undefined;
}

const UNREADABLE: SseEvent = {
  event: 'error',
  data: {
    type: 'error',
    error: { type: 'api_error', message: 'the provider sent an unreadable stream event' },
  },
};

function parse(text: string): SseEvent | undefined {
  let event = 'message';
  const data: string[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (line.startsWith('event:')) event = line.slice(6).trim();
    else if (line.startsWith('data:')) data.push(line.slice(line[5] === ' ' ? 6 : 5));
  }
  if (data.length === 0) return undefined;
  try {
    return { event, data: JSON.parse(data.join('\n')) };
  } catch {
    return UNREADABLE;
  }
}

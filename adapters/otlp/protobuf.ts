import type { Attributes, Origin, SpanData, SpanEvent } from './span.ts';

/**
 * The OTLP/protobuf ExportTraceServiceRequest (opentelemetry-proto trace/v1), written by hand:
 * the few messages a span needs (resource, scope, span, event, status, key-value, any-value) are
 * not worth a protobuf runtime. Field numbers are the .proto's.
 */
export function encodeProtobuf(origin: Origin, spans: readonly SpanData[]): Uint8Array {
  const w = new Writer(1024 + spans.length * 1536);
  w.message(1, (rs) => {
    rs.message(1, (r) => attributes(r, 1, origin.resource));
    rs.message(2, (ss) => {
      ss.message(1, (sc) => {
        sc.string(1, origin.scope.name);
        sc.string(2, origin.scope.version);
      });
      for (const s of spans) {
        const gap = ss.begin(2, 2);
        span(ss, s);
        ss.end(gap, 2);
      }
    });
  });
  return w.finish();
}

function span(w: Writer, s: SpanData): void {
  w.hex(1, s.traceId);
  w.hex(2, s.spanId);
  if (s.parentSpanId) w.hex(4, s.parentSpanId);
  w.string(5, s.name);
  w.varintField(6, s.kind);
  w.nanos(7, s.start);
  w.nanos(8, s.end);
  attributes(w, 9, s.attributes);
  for (const e of s.events ?? []) w.message(11, (ew) => event(ew, e));
  const status = s.status;
  if (status)
    w.message(15, (sw) => {
      if (status.message) sw.string(2, status.message);
      sw.varintField(3, status.code);
    });
}

function event(w: Writer, e: SpanEvent): void {
  w.nanos(1, e.time);
  w.string(2, e.name);
  if (e.attributes) attributes(w, 3, e.attributes);
}

function attributes(w: Writer, field: number, a: Attributes | Record<string, string>): void {
  for (const key in a) {
    const v = a[key];
    if (v === undefined) continue;
    const kv = w.begin(field, 1);
    w.string(1, key);
    const any = w.begin(2, 1);
    if (typeof v === 'string') w.string(1, v);
    else if (typeof v === 'boolean') w.varintField(2, v ? 1 : 0);
    else if (Number.isInteger(v)) w.int64(3, v);
    else w.double(4, v);
    w.end(any, 1);
    w.end(kv, 1);
  }
}

/**
 * A growable protobuf writer on one buffer. A nested message is written in place behind a gap
 * for its length; once its size is known the length goes in (the bytes move only when the
 * length needs another width than the gap guessed): no writer or buffer per message.
 */
class Writer {
  private buf: Buffer;
  private len = 0;

  constructor(size: number) {
    this.buf = Buffer.allocUnsafe(size);
  }

  finish(): Uint8Array {
    return this.buf.subarray(0, this.len);
  }

  message(field: number, fill: (w: Writer) => void): void {
    const gap = this.begin(field, 5);
    fill(this);
    this.end(gap, 5);
  }

  /**
   * Opens a nested message (its fields follow) behind a gap of `width` bytes for its length: 1
   * for what is nearly always under 128 bytes (an attribute), more for larger ones. Returns the
   * gap that `end` (given the same width) closes.
   */
  begin(field: number, width: number): number {
    this.tag(field, 2);
    this.room(width);
    const gap = this.len;
    this.len += width;
    return gap;
  }

  /** Puts a nested message's length in its gap, moving its bytes if the length needs another width. */
  end(gap: number, width: number): void {
    const start = gap + width;
    let n = this.len - start;
    if (width === 1 && n < 0x80) {
      this.buf[gap] = n;
      return;
    }
    let k = 1;
    for (let m = n; m > 0x7f; m = Math.floor(m / 128)) k++;
    if (k !== width) {
      this.room(k - width);
      this.buf.copyWithin(gap + k, start, this.len);
      this.len += k - width;
    }
    let at = gap;
    while (n > 0x7f) {
      this.buf[at++] = (n % 128) | 0x80;
      n = Math.floor(n / 128);
    }
    this.buf[at] = n;
  }

  string(field: number, s: string): void {
    this.tag(field, 2);
    // Short ASCII (ids, attribute keys) is copied by hand: cheaper than a native call a string.
    if (s.length < 128) {
      this.room(1 + s.length);
      const buf = this.buf;
      let at = this.len + 1;
      let i = 0;
      for (; i < s.length; i++) {
        const c = s.charCodeAt(i);
        if (c >= 0x80) break;
        buf[at++] = c;
      }
      if (i === s.length) {
        buf[this.len] = s.length;
        this.len = at;
        return;
      }
    }
    const n = Buffer.byteLength(s);
    this.varint(n);
    this.room(n);
    this.buf.write(s, this.len, n);
    this.len += n;
  }

  hex(field: number, hex: string): void {
    const n = hex.length >> 1;
    this.tag(field, 2);
    this.varint(n);
    this.room(n);
    this.buf.write(hex, this.len, n, 'hex');
    this.len += n;
  }

  varintField(field: number, n: number): void {
    this.tag(field, 0);
    this.varint(n);
  }

  int64(field: number, n: number): void {
    this.tag(field, 0);
    if (n >= 0 && n <= Number.MAX_SAFE_INTEGER) this.varint(n);
    else this.bigVarint(BigInt.asUintN(64, BigInt(Math.trunc(n))));
  }

  /** Epoch ms as fixed64 nanoseconds, to the microsecond, in exact double arithmetic (no BigInt). */
  nanos(field: number, ms: number): void {
    const us = Math.round(ms * 1000);
    const high = Math.floor(us / 0x1_0000_0000);
    const low = (us - high * 0x1_0000_0000) * 1000;
    const carry = Math.floor(low / 0x1_0000_0000);
    this.tag(field, 1);
    this.room(8);
    this.buf.writeUInt32LE(low - carry * 0x1_0000_0000, this.len);
    this.buf.writeUInt32LE(high * 1000 + carry, this.len + 4);
    this.len += 8;
  }

  double(field: number, n: number): void {
    this.tag(field, 1);
    this.room(8);
    this.buf.writeDoubleLE(n, this.len);
    this.len += 8;
  }

  private tag(field: number, wire: number): void {
    this.varint((field << 3) | wire);
  }

  private varint(n: number): void {
    if (n < 0x80 && this.len < this.buf.length) {
      this.buf[this.len++] = n;
      return;
    }
    this.room(10);
    while (n > 0x7f) {
      this.buf[this.len++] = (n % 128) | 0x80;
      n = Math.floor(n / 128);
    }
    this.buf[this.len++] = n;
  }

  private bigVarint(n: bigint): void {
    this.room(10);
    while (n > 0x7fn) {
      this.buf[this.len++] = Number(n & 0x7fn) | 0x80;
      n >>= 7n;
    }
    this.buf[this.len++] = Number(n);
  }

  private room(n: number): void {
    if (this.len + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.len + n));
    this.buf.copy(next, 0, 0, this.len);
    this.buf = next;
  }
}

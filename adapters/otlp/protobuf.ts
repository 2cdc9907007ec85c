import { type Attributes, nanos, type Origin, type SpanData, type SpanEvent } from './span.ts';

/**
 * The OTLP/protobuf ExportTraceServiceRequest (opentelemetry-proto trace/v1), written by hand:
 * the few messages a span needs (resource, scope, span, event, status, key-value, any-value) are
 * not worth a protobuf runtime. Field numbers are the .proto's; a nested message is written to a
 * writer of its own and copied in behind its length.
 */
export function encodeProtobuf(origin: Origin, spans: readonly SpanData[]): Uint8Array {
  const scopeSpans = new Writer();
  scopeSpans.message(1, (w) => {
    w.string(1, origin.scope.name);
    w.string(2, origin.scope.version);
  });
  for (const s of spans) scopeSpans.message(2, (w) => span(w, s));
  const resourceSpans = new Writer();
  resourceSpans.message(1, (w) => attributes(w, 1, origin.resource));
  resourceSpans.embed(2, scopeSpans);
  const request = new Writer();
  request.embed(1, resourceSpans);
  return request.finish();
}

function span(w: Writer, s: SpanData): void {
  w.hex(1, s.traceId);
  w.hex(2, s.spanId);
  if (s.parentSpanId) w.hex(4, s.parentSpanId);
  w.string(5, s.name);
  w.varintField(6, s.kind);
  w.fixed64(7, nanos(s.start));
  w.fixed64(8, nanos(s.end));
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
  w.fixed64(1, nanos(e.time));
  w.string(2, e.name);
  if (e.attributes) attributes(w, 3, e.attributes);
}

function attributes(w: Writer, field: number, a: Attributes | Record<string, string>): void {
  for (const key in a) {
    const v = a[key];
    if (v === undefined) continue;
    w.message(field, (kv) => {
      kv.string(1, key);
      kv.message(2, (any) => {
        if (typeof v === 'string') any.string(1, v);
        else if (typeof v === 'boolean') any.varintField(2, v ? 1 : 0);
        else if (Number.isInteger(v)) any.int64(3, v);
        else any.double(4, v);
      });
    });
  }
}

/** A growable protobuf writer: varints, fixed64, doubles, length-delimited fields. */
class Writer {
  private buf = Buffer.allocUnsafe(256);
  private len = 0;

  finish(): Uint8Array {
    return this.buf.subarray(0, this.len);
  }

  message(field: number, fill: (w: Writer) => void): void {
    const inner = new Writer();
    fill(inner);
    this.embed(field, inner);
  }

  embed(field: number, inner: Writer): void {
    this.tag(field, 2);
    this.varint(inner.len);
    this.raw(inner.buf, inner.len);
  }

  string(field: number, s: string): void {
    const n = Buffer.byteLength(s);
    this.tag(field, 2);
    this.varint(n);
    this.room(n);
    this.buf.write(s, this.len, 'utf8');
    this.len += n;
  }

  hex(field: number, hex: string): void {
    const n = hex.length >> 1;
    this.tag(field, 2);
    this.varint(n);
    this.room(n);
    this.buf.write(hex, this.len, 'hex');
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

  fixed64(field: number, n: bigint): void {
    this.tag(field, 1);
    this.room(8);
    this.buf.writeBigUInt64LE(n, this.len);
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

  private raw(src: Buffer, n: number): void {
    this.room(n);
    src.copy(this.buf, this.len, 0, n);
    this.len += n;
  }

  private room(n: number): void {
    if (this.len + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.len + n));
    this.buf.copy(next, 0, 0, this.len);
    this.buf = next;
  }
}

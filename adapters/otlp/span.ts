/**
 * A finished span, as the exporter takes it: plain data, built once when the operation ended
 * (nothing is kept open while a call runs). Times are epoch milliseconds with a fraction; an
 * attribute whose value is undefined is left out, so callers can name every attribute without
 * building objects conditionally.
 */
export interface SpanData {
  /** 32 lowercase hex digits. */
  traceId: string;
  /** 16 lowercase hex digits. */
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: SpanKind;
  start: number;
  end: number;
  attributes: Attributes;
  events?: SpanEvent[];
  /** Left out: unset (the operation did not fail). */
  status?: { code: StatusCode; message?: string };
}

export type Attributes = Record<string, string | number | boolean | undefined>;

export interface SpanEvent {
  name: string;
  time: number;
  attributes?: Attributes;
}

/** OTLP's SpanKind. */
export const SpanKind = { internal: 1, server: 2, client: 3, producer: 4, consumer: 5 } as const;
export type SpanKind = (typeof SpanKind)[keyof typeof SpanKind];

/** OTLP's Status.StatusCode (0 unset is `status` left out). */
export const StatusCode = { ok: 1, error: 2 } as const;
export type StatusCode = (typeof StatusCode)[keyof typeof StatusCode];

/** Who produced the spans: the resource attributes (service.name …) and the instrumentation scope. */
export interface Origin {
  resource: Record<string, string>;
  scope: { name: string; version: string };
}

/** Epoch ms (with a fraction) as OTLP's uint64 nanoseconds, exactly: no float past 2^53. */
export function nanos(ms: number): bigint {
  const whole = Math.floor(ms);
  const frac = Math.min(999_999, Math.round((ms - whole) * 1e6));
  return BigInt(whole) * 1_000_000n + BigInt(frac);
}

type AnyValueJson =
  | { stringValue: string }
  | { boolValue: boolean }
  | { intValue: string }
  | { doubleValue: number };

function valueJson(v: string | number | boolean): AnyValueJson {
  if (typeof v === 'string') return { stringValue: v };
  if (typeof v === 'boolean') return { boolValue: v };
  return Number.isInteger(v) ? { intValue: String(v) } : { doubleValue: v };
}

function attributesJson(a: Attributes | Record<string, string>): { key: string; value: AnyValueJson }[] {
  const out: { key: string; value: AnyValueJson }[] = [];
  for (const key in a) {
    const v = a[key];
    if (v !== undefined) out.push({ key, value: valueJson(v) });
  }
  return out;
}

/** The OTLP/JSON ExportTraceServiceRequest (ids in hex, times as decimal strings: the spec's JSON mapping). */
export function encodeJson(origin: Origin, spans: readonly SpanData[]): string {
  return JSON.stringify({
    resourceSpans: [
      {
        resource: { attributes: attributesJson(origin.resource) },
        scopeSpans: [
          {
            scope: origin.scope,
            spans: spans.map((s) => ({
              traceId: s.traceId,
              spanId: s.spanId,
              ...(s.parentSpanId ? { parentSpanId: s.parentSpanId } : {}),
              name: s.name,
              kind: s.kind,
              startTimeUnixNano: String(nanos(s.start)),
              endTimeUnixNano: String(nanos(s.end)),
              attributes: attributesJson(s.attributes),
              ...(s.events?.length
                ? {
                    events: s.events.map((e) => ({
                      timeUnixNano: String(nanos(e.time)),
                      name: e.name,
                      attributes: e.attributes ? attributesJson(e.attributes) : [],
                    })),
                  }
                : {}),
              ...(s.status ? { status: s.status } : {}),
            })),
          },
        ],
      },
    ],
  });
}

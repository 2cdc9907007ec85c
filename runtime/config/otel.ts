/**
 * OpenTelemetry traces, configured the standard way: by the `OTEL_*` environment variables of
 * the OpenTelemetry SDK specification (the OTLP/HTTP exporter, the batch span processor, the
 * resource, the sampler). Off unless an endpoint is set (or `OTEL_TRACES_EXPORTER=otlp` asks
 * for the spec's default `http://localhost:4318`); `OTEL_SDK_DISABLED=true` or
 * `OTEL_TRACES_EXPORTER=none` turn it off whatever else is set. A value we cannot honour is a
 * config error naming the variable, never a silent fallback.
 */
export interface TracingSettings {
  /** The OTLP/HTTP traces URL (`…/v1/traces`). */
  url: string;
  protocol: 'http/json' | 'http/protobuf';
  /** Sent with every export (authentication); never logged. */
  headers: Record<string, string>;
  timeoutMs: number;
  /** `service.name` and the rest of OTEL_RESOURCE_ATTRIBUTES. */
  resource: Record<string, string>;
  sampler: { kind: 'always_on' | 'always_off' | 'ratio'; ratio: number; parentBased: boolean };
  batch: {
    scheduleDelayMs: number;
    exportTimeoutMs: number;
    maxQueueSize: number;
    maxExportBatchSize: number;
  };
}

const SAMPLERS = new Set([
  'always_on',
  'always_off',
  'traceidratio',
  'parentbased_always_on',
  'parentbased_always_off',
  'parentbased_traceidratio',
]);

/** The traces settings from the environment, or undefined when tracing is off. */
export function tracingFromEnv(env: NodeJS.ProcessEnv, problems: string[]): TracingSettings | undefined {
  const v = (name: string) => {
    const s = env[name]?.trim();
    return s ? s : undefined;
  };
  if (v('OTEL_SDK_DISABLED')?.toLowerCase() === 'true') return undefined;
  const exporters = (v('OTEL_TRACES_EXPORTER') ?? '').split(',').map((s) => s.trim().toLowerCase());
  if (exporters.includes('none')) return undefined;
  const other = exporters.filter((e) => e && e !== 'otlp');
  if (other.length) {
    problems.push(
      `OTEL_TRACES_EXPORTER: ${JSON.stringify(other.join(','))} is not supported; use otlp (or none)`,
    );
    return undefined;
  }
  const url = endpoint(v, exporters.includes('otlp'), problems);
  if (!url) return undefined;
  const protocol =
    v('OTEL_EXPORTER_OTLP_TRACES_PROTOCOL') ?? v('OTEL_EXPORTER_OTLP_PROTOCOL') ?? 'http/protobuf';
  if (protocol !== 'http/json' && protocol !== 'http/protobuf') {
    const name = v('OTEL_EXPORTER_OTLP_TRACES_PROTOCOL')
      ? 'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL'
      : 'OTEL_EXPORTER_OTLP_PROTOCOL';
    problems.push(`${name}: ${JSON.stringify(protocol)} is not supported; use http/protobuf or http/json`);
  }
  const headers = {
    ...pairs(v, 'OTEL_EXPORTER_OTLP_HEADERS', problems, false),
    ...pairs(v, 'OTEL_EXPORTER_OTLP_TRACES_HEADERS', problems, false),
  };
  const resource = pairs(v, 'OTEL_RESOURCE_ATTRIBUTES', problems, true);
  const serviceName = v('OTEL_SERVICE_NAME') ?? resource['service.name'] ?? 'chokepoint';
  const int = (name: string, dflt: number, min: number) => {
    const s = v(name);
    if (s === undefined) return dflt;
    const n = Number(s);
    if (!Number.isInteger(n) || n < min) {
      problems.push(`${name}: expected an integer ≥ ${min}, got ${JSON.stringify(s)}`);
      return dflt;
    }
    return n;
  };
  const timeoutName = v('OTEL_EXPORTER_OTLP_TRACES_TIMEOUT')
    ? 'OTEL_EXPORTER_OTLP_TRACES_TIMEOUT'
    : 'OTEL_EXPORTER_OTLP_TIMEOUT';
  const batch = {
    scheduleDelayMs: int('OTEL_BSP_SCHEDULE_DELAY', 5_000, 0),
    exportTimeoutMs: int('OTEL_BSP_EXPORT_TIMEOUT', 30_000, 1),
    maxQueueSize: int('OTEL_BSP_MAX_QUEUE_SIZE', 2_048, 1),
    maxExportBatchSize: int('OTEL_BSP_MAX_EXPORT_BATCH_SIZE', 512, 1),
  };
  if (batch.maxExportBatchSize > batch.maxQueueSize) {
    problems.push(
      `OTEL_BSP_MAX_EXPORT_BATCH_SIZE: ${batch.maxExportBatchSize} is more than OTEL_BSP_MAX_QUEUE_SIZE (${batch.maxQueueSize})`,
    );
  }
  return {
    url,
    protocol: protocol as TracingSettings['protocol'],
    headers,
    timeoutMs: int(timeoutName, 10_000, 1),
    resource: { ...resource, 'service.name': serviceName },
    sampler: sampler(v, problems),
    batch,
  };
}

function endpoint(
  v: (name: string) => string | undefined,
  asked: boolean,
  problems: string[],
): string | undefined {
  const traces = v('OTEL_EXPORTER_OTLP_TRACES_ENDPOINT');
  const base = v('OTEL_EXPORTER_OTLP_ENDPOINT');
  const [name, url] = traces
    ? ['OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', traces]
    : base
      ? ['OTEL_EXPORTER_OTLP_ENDPOINT', `${base.replace(/\/+$/, '')}/v1/traces`]
      : asked
        ? ['OTEL_TRACES_EXPORTER', 'http://localhost:4318/v1/traces']
        : [undefined, undefined];
  if (!name || !url) return undefined;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    problems.push(`${name}: not a URL: ${JSON.stringify(traces ?? base)}`);
    return undefined;
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    problems.push(`${name}: expected an http:// or https:// URL (OTLP/HTTP), got ${parsed.protocol}//…`);
    return undefined;
  }
  return url;
}

/** `key1=value1,key2=value2` with percent-encoded values (the W3C baggage format the spec uses). */
function pairs(
  v: (name: string) => string | undefined,
  name: string,
  problems: string[],
  showValues: boolean,
): Record<string, string> {
  const out: Record<string, string> = {};
  const s = v(name);
  if (!s) return out;
  for (const [i, part] of s.split(',').entries()) {
    if (!part.trim()) continue;
    const eq = part.indexOf('=');
    const key = eq > 0 ? part.slice(0, eq).trim() : '';
    let value: string | undefined;
    try {
      value = eq > 0 ? decodeURIComponent(part.slice(eq + 1).trim()) : undefined;
    } catch {
      value = undefined;
    }
    if (!key || value === undefined) {
      // Headers carry credentials: the entry is named by its position, not shown.
      const shown = showValues ? ` ${JSON.stringify(part.trim())}` : '';
      problems.push(`${name}: entry ${i + 1}${shown} is not key=value (values percent-encoded)`);
      continue;
    }
    out[key] = value;
  }
  return out;
}

function sampler(v: (name: string) => string | undefined, problems: string[]): TracingSettings['sampler'] {
  const name = (v('OTEL_TRACES_SAMPLER') ?? 'parentbased_always_on').toLowerCase();
  if (!SAMPLERS.has(name)) {
    problems.push(
      `OTEL_TRACES_SAMPLER: ${JSON.stringify(name)} is not supported; use one of ${[...SAMPLERS].join(', ')}`,
    );
    return { kind: 'always_on', ratio: 1, parentBased: true };
  }
  const parentBased = name.startsWith('parentbased_');
  const base = parentBased ? name.slice('parentbased_'.length) : name;
  if (base !== 'traceidratio') return { kind: base as 'always_on' | 'always_off', ratio: 1, parentBased };
  const arg = v('OTEL_TRACES_SAMPLER_ARG') ?? '1';
  const ratio = Number(arg);
  if (!(ratio >= 0 && ratio <= 1)) {
    problems.push(`OTEL_TRACES_SAMPLER_ARG: expected a ratio 0..1, got ${JSON.stringify(arg)}`);
    return { kind: 'ratio', ratio: 1, parentBased };
  }
  return { kind: 'ratio', ratio, parentBased };
}

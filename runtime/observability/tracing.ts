import { createHash, randomFillSync } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { OtlpExporter } from '../../adapters/otlp/exporter.ts';
import { type SpanData, SpanKind, StatusCode } from '../../adapters/otlp/span.ts';
import type { TracingSettings } from '../config/otel.ts';
import type { CallRecord, ModelCall } from '../gateway/call.ts';
import type { MeteredCall } from '../gateway/metered.ts';
import type { CallTiming, ToolObservation } from '../gateway/observe.ts';
import { cacheHitRate } from '../gateway/usage.ts';
import type { Identity } from '../identity.ts';
import type { Logger } from '../log.ts';
import { formatUsd } from '../money.ts';
import type { RunTraces } from '../runtime.ts';
import type { ApprovalItem } from '../store/approvals.ts';
import type { RunRecord } from '../store/runs.ts';

/** Where spans go: the OTLP exporter, or a test's list. */
export interface SpanSink {
  push(span: SpanData): void;
  flush(): Promise<void>;
  shutdown(): Promise<void>;
}

// The attributes are one object literal with every key, undefined where it does not apply (the
// encoders skip those): one hidden class per span kind, so encoding walks them fast.

/** A span's place in a trace: its trace, its parent, whether it is recorded. */
interface Parent {
  traceId: string;
  spanId?: string;
  sampled: boolean;
}

const VERSION = '0.1.0';
/** performance.now() → epoch ms. */
const ORIGIN = performance.timeOrigin;
const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(?:-|$)/;
const ZERO_TRACE = '0'.repeat(32);
const ZERO_SPAN = '0'.repeat(16);

/** The `gen_ai.provider.name` of each provider kind (the GenAI semantic conventions' values). */
const GENAI_PROVIDER: Record<string, string> = {
  anthropic: 'anthropic',
  bedrock: 'aws.bedrock',
  vertex: 'gcp.vertex_ai',
  openai: 'openai',
  emulator: 'chokepoint.emulator',
};

/**
 * OpenTelemetry traces: one span per model call, per tool call, per workflow run and per approval
 * wait, with the GenAI semantic conventions' attributes and ours under `chokepoint.`. A span is
 * built once, when its operation has ended (from the timings, the call record, the run record or
 * the approval item the rest of the runtime already keeps) and queued for the exporter; nothing
 * is held open while a call runs, and with tracing off none of this exists (the callers hold
 * `undefined`). Trace context: a gateway call's `traceparent` header is its parent; a run's trace
 * and span ids are derived from the run id, so its calls, its approval waits and the run span
 * itself (sent when the run ends, by whichever worker ends it) meet in one trace across
 * processes and restarts without anything stored.
 */
export class Tracer implements RunTraces {
  private failures = 0;

  constructor(
    private readonly settings: TracingSettings,
    private readonly sink: SpanSink,
    /** The kind (`anthropic`, `bedrock`, …) of a provider by its config name. */
    private readonly kindOf: (provider: string) => string | undefined,
  ) {}

  /** A model call's span (`chat <model>`, kind client). */
  call(
    call: Pick<ModelCall, 'identity' | 'body' | 'headers' | 'openai' | 'requestId'>,
    r: CallRecord,
    t: CallTiming,
    prefixHash?: string,
  ): void {
    const parent = this.parentOf(call.identity, call.headers?.traceparent);
    if (!parent.sampled) return;
    const operation = call.openai?.endpoint === 'embeddings' ? 'embeddings' : 'chat';
    const tk = r.tokens;
    const admitted = r.outcome !== 'refused';
    const kind = r.provider === undefined ? undefined : this.kindOf(r.provider);
    const error = r.outcome === 'ok' ? undefined : (r.code ?? `http_${r.status}`);
    const events: SpanData['events'] = [];
    if (t.admitted !== undefined) events.push({ name: 'chokepoint.admitted', time: ORIGIN + t.admitted });
    if (t.responded !== undefined) events.push({ name: 'chokepoint.responded', time: ORIGIN + t.responded });
    const maxTokens = call.openai ? call.openai.facts.maxOutput : call.body.max_tokens;
    this.sink.push({
      traceId: parent.traceId,
      spanId: randomHex(8),
      parentSpanId: parent.spanId,
      name: `${operation} ${call.body.model}`,
      kind: SpanKind.client,
      start: ORIGIN + t.started,
      end: ORIGIN + t.ended,
      attributes: {
        'gen_ai.operation.name': operation,
        'gen_ai.provider.name': kind === undefined ? undefined : (GENAI_PROVIDER[kind] ?? kind),
        'gen_ai.request.model': call.body.model,
        'gen_ai.response.model': admitted ? r.model : undefined,
        'gen_ai.request.max_tokens': typeof maxTokens === 'number' ? maxTokens : undefined,
        // The conventions count cached and cache-written tokens inside input_tokens.
        'gen_ai.usage.input_tokens': admitted
          ? tk.input + tk.cacheRead + tk.cacheWrite5m + tk.cacheWrite1h
          : undefined,
        'gen_ai.usage.output_tokens': admitted ? tk.output : undefined,
        'gen_ai.usage.cache_read.input_tokens': admitted ? tk.cacheRead : undefined,
        'gen_ai.usage.cache_creation.input_tokens': admitted ? tk.cacheWrite5m + tk.cacheWrite1h : undefined,
        'error.type': error,
        'http.response.status_code': r.status,
        'chokepoint.team': call.identity.team,
        'chokepoint.env': call.identity.env,
        'chokepoint.seat': call.identity.seat,
        'chokepoint.workflow': call.identity.workflow,
        'chokepoint.run': call.identity.run,
        'chokepoint.session': call.identity.session,
        'chokepoint.key_id': call.identity.keyId,
        'chokepoint.request_id': call.requestId,
        'chokepoint.provider': r.provider,
        'chokepoint.stream': call.body.stream === true,
        'chokepoint.cost_micros': r.cost,
        'chokepoint.cost_usd': formatUsd(r.cost),
        'chokepoint.reserved_micros': r.reserved,
        'chokepoint.budget.decision': admitted ? 'admitted' : 'refused',
        'chokepoint.refusal.code': admitted ? undefined : r.code,
        'chokepoint.usage.cache_write_1h.input_tokens':
          admitted && tk.cacheWrite1h ? tk.cacheWrite1h : undefined,
        'chokepoint.prefix_hash': prefixHash,
        'chokepoint.cache_hit_rate': admitted ? cacheHitRate(tk) : undefined,
        'chokepoint.ledger_id': r.ledgerId,
      },
      events,
      status: error ? { code: StatusCode.error, message: error } : undefined,
    });
  }

  /** A tool call's span (`execute_tool <name>`, kind internal). */
  tool(call: MeteredCall, seen: ToolObservation, t: CallTiming): void {
    const parent = this.parentOf(call.identity);
    if (!parent.sampled) return;
    const error = seen.outcome === 'ok' ? undefined : (seen.code ?? seen.outcome);
    this.sink.push({
      traceId: parent.traceId,
      spanId: randomHex(8),
      parentSpanId: parent.spanId,
      name: `execute_tool ${call.name}`,
      kind: SpanKind.internal,
      start: ORIGIN + t.started,
      end: ORIGIN + t.ended,
      attributes: {
        'gen_ai.operation.name': 'execute_tool',
        'gen_ai.tool.name': call.name,
        'gen_ai.tool.type': 'extension',
        'error.type': error,
        'chokepoint.team': call.identity.team,
        'chokepoint.env': call.identity.env,
        'chokepoint.seat': call.identity.seat,
        'chokepoint.workflow': call.identity.workflow,
        'chokepoint.run': call.identity.run,
        'chokepoint.session': call.identity.session,
        'chokepoint.key_id': call.identity.keyId,
        'chokepoint.request_id': call.requestId,
        'chokepoint.cost_micros': seen.cost,
        'chokepoint.cost_usd': formatUsd(seen.cost),
        'chokepoint.reserved_micros': seen.reserved,
        'chokepoint.price_micros': call.price,
        'chokepoint.budget.decision': seen.outcome === 'refused' ? 'refused' : 'admitted',
        'chokepoint.refusal.code': seen.outcome === 'refused' ? seen.code : undefined,
        'chokepoint.ledger_id': seen.ledgerId,
      },
      status: error ? { code: StatusCode.error, message: error } : undefined,
    });
  }

  /** A run's span (`invoke_workflow <workflow>`), sent once it has ended; the root of its trace. */
  run(r: RunRecord): void {
    const ctx = runContext(r.id);
    if (!this.sampledRoot(ctx.traceId)) return;
    const failed = r.state === 'failed';
    this.sink.push({
      traceId: ctx.traceId,
      spanId: ctx.spanId,
      name: `invoke_workflow ${r.workflow}`,
      kind: SpanKind.internal,
      start: r.startedAt,
      end: r.endedAt ?? r.updatedAt,
      attributes: {
        'gen_ai.operation.name': 'invoke_workflow',
        'gen_ai.workflow.name': r.workflow,
        'error.type': failed ? (r.reason ?? 'error') : undefined,
        'chokepoint.team': r.identity.team,
        'chokepoint.env': r.identity.env,
        'chokepoint.seat': r.identity.seat,
        'chokepoint.workflow': r.identity.workflow,
        'chokepoint.run': r.identity.run,
        'chokepoint.session': r.identity.session,
        'chokepoint.key_id': r.identity.keyId,
        'chokepoint.workflow.version': r.version,
        'chokepoint.run.state': r.state,
        'chokepoint.run.reason': r.reason,
        'chokepoint.run.steps': r.steps,
        'chokepoint.run.suspensions': r.suspensions,
        'chokepoint.run.spend_box_micros': r.limits.spend,
      },
      status: failed ? { code: StatusCode.error, message: r.error ?? r.reason ?? 'failed' } : undefined,
    });
  }

  /** An approval wait's span (`approval <reason>`): from the suspension to the decision. */
  approval(item: ApprovalItem): void {
    const d = item.decision;
    if (!d) return;
    const parent =
      item.kind === 'run'
        ? runContext(item.runId)
        : { traceId: hashHex(`session ${item.runId}`).slice(0, 32), spanId: undefined };
    if (!this.sampledRoot(parent.traceId)) return;
    this.sink.push({
      traceId: parent.traceId,
      spanId: hashHex(`approval ${item.id}`).slice(0, 16),
      parentSpanId: parent.spanId,
      name: `approval ${item.reason}`,
      kind: SpanKind.internal,
      start: item.createdAt,
      end: d.at,
      attributes: {
        'chokepoint.team': item.identity.team,
        'chokepoint.env': item.identity.env,
        'chokepoint.seat': item.identity.seat,
        'chokepoint.workflow': item.identity.workflow,
        'chokepoint.run': item.identity.run,
        'chokepoint.session': item.identity.session,
        'chokepoint.key_id': item.identity.keyId,
        'chokepoint.approval.id': item.id,
        'chokepoint.approval.kind': item.kind,
        'chokepoint.approval.reason': item.reason,
        'chokepoint.approval.decision': d.action,
        'chokepoint.approval.actor': d.actor,
        'chokepoint.approval.add_spend_micros': d.addSpend,
        'chokepoint.approval.add_time_ms': d.addTime,
      },
    });
  }

  /** An export that failed for good: logged the first time and every hundredth after. */
  exportFailed(log: Logger, err: Error, spans: number): void {
    if (this.failures++ % 100 === 0) {
      log.warn('traces could not be exported: spans dropped', {
        error: err.message,
        spans,
        failures: this.failures,
      });
    }
  }

  flush(): Promise<void> {
    return this.sink.flush();
  }

  close(): Promise<void> {
    return this.sink.shutdown();
  }

  private parentOf(identity: Identity, traceparent?: string | string[]): Parent {
    if (typeof traceparent === 'string') {
      const m = TRACEPARENT.exec(traceparent);
      // Version ff and all-zero ids are invalid (W3C Trace Context): a new trace instead.
      if (m && m[1] !== 'ff' && m[2] !== ZERO_TRACE && m[3] !== ZERO_SPAN) {
        const sampled = (Number.parseInt(m[4]!, 16) & 1) === 1;
        const s = this.settings.sampler;
        return {
          traceId: m[2]!,
          spanId: m[3],
          sampled: s.parentBased ? sampled : this.sampledRoot(m[2]!),
        };
      }
    }
    if (identity.run) {
      const ctx = runContext(identity.run);
      return { traceId: ctx.traceId, spanId: ctx.spanId, sampled: this.sampledRoot(ctx.traceId) };
    }
    const traceId = randomHex(16);
    return { traceId, sampled: this.sampledRoot(traceId) };
  }

  /** The sampler's decision for a trace with no (remote) parent: the same for every span of a run. */
  private sampledRoot(traceId: string): boolean {
    const s = this.settings.sampler;
    if (s.kind === 'always_on') return true;
    if (s.kind === 'always_off') return false;
    return Number.parseInt(traceId.slice(24), 16) / 0x1_0000_0000 < s.ratio;
  }
}

/** The tracer of `settings`, exporting over OTLP/HTTP; export failures go to `log`. */
export function openTracer(
  settings: TracingSettings,
  log: Logger,
  kindOf: (provider: string) => string | undefined,
): Tracer {
  let tracer: Tracer | undefined;
  const exporter = new OtlpExporter({
    ...settings,
    scope: { name: 'chokepoint', version: VERSION },
    onError: (err, spans) => tracer?.exportFailed(log, err, spans),
  });
  tracer = new Tracer(settings, exporter, kindOf);
  return tracer;
}

/** A run's trace id and span id, the same in every process: derived from the run id. */
export function runContext(runId: string): { traceId: string; spanId: string } {
  const h = hashHex(`run ${runId}`);
  return { traceId: h.slice(0, 32), spanId: h.slice(32, 48) };
}

function hashHex(s: string): string {
  return createHash('sha256').update(s).digest('hex');
}

// Span ids from a pool of random bytes refilled 4 KiB at a time: one syscall per 512 spans.
const pool = Buffer.allocUnsafe(4096);
let at = pool.length;
function randomHex(bytes: number): string {
  if (at + bytes > pool.length) {
    randomFillSync(pool);
    at = 0;
  }
  const s = pool.toString('hex', at, at + bytes);
  at += bytes;
  return s;
}

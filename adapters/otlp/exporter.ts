import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { encodeProtobuf } from './protobuf.ts';
import { encodeJson, type Origin, type SpanData } from './span.ts';

export interface OtlpExporterOptions extends Origin {
  /** The OTLP/HTTP traces URL (`…/v1/traces`). */
  url: string;
  protocol: 'http/json' | 'http/protobuf';
  headers: Record<string, string>;
  /** One export request's timeout. */
  timeoutMs: number;
  /** The batch span processor's settings (OTEL_BSP_*). */
  batch: {
    scheduleDelayMs: number;
    exportTimeoutMs: number;
    maxQueueSize: number;
    maxExportBatchSize: number;
  };
  /** An export that failed for good (its spans are dropped): for the caller's log. */
  onError?(err: Error, spans: number): void;
}

/** Retryable answers (the OTLP/HTTP spec): throttled or the collector briefly unavailable. */
const RETRYABLE = new Set([429, 502, 503, 504]);
const RETRIES = 2;
const BACKOFF_MS = 500;

/**
 * An OTLP/HTTP trace exporter with the batch span processor's behaviour: `push` only queues (no
 * I/O, no encoding on the caller's path); a batch is sent when it is full or `scheduleDelayMs`
 * after the first queued span; a full queue drops the newest spans (counted) rather than grow;
 * one export is in flight at a time; throttling and 5xx are retried twice with backoff. Speaks
 * http/protobuf and http/json. A leaf: it knows the wire format, not what the spans mean.
 */
export class OtlpExporter {
  readonly stats = { exported: 0, dropped: 0, failed: 0 };
  private queue: SpanData[] = [];
  private timer: NodeJS.Timeout | undefined;
  private exporting: Promise<void> | undefined;
  private again = false;
  private closed = false;
  private closing = false;
  private readonly headers: Record<string, string>;
  private readonly url: URL;
  private readonly agent: HttpAgent;

  constructor(private readonly o: OtlpExporterOptions) {
    this.url = new URL(o.url);
    this.agent =
      this.url.protocol === 'https:'
        ? new HttpsAgent({ keepAlive: true })
        : new HttpAgent({ keepAlive: true });
    this.headers = {
      ...o.headers,
      'content-type': o.protocol === 'http/json' ? 'application/json' : 'application/x-protobuf',
    };
  }

  push(span: SpanData): void {
    if (this.closed || this.queue.length >= this.o.batch.maxQueueSize) {
      this.stats.dropped++;
      return;
    }
    this.queue.push(span);
    if (this.queue.length >= this.o.batch.maxExportBatchSize) void this.export();
    else if (!this.timer) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        void this.export();
      }, this.o.batch.scheduleDelayMs);
      this.timer.unref();
    }
  }

  /** Sends everything queued; resolves when it has been sent (or has failed for good). */
  flush(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    return this.export();
  }

  /** Flushes, then takes no more spans. */
  async shutdown(): Promise<void> {
    this.closing = true;
    await this.flush();
    this.closed = true;
    this.agent.destroy();
  }

  private export(): Promise<void> {
    if (this.exporting) {
      this.again = true;
      return this.exporting;
    }
    this.exporting = (async () => {
      do {
        this.again = false;
        while (this.queue.length) await this.send(this.queue.splice(0, this.o.batch.maxExportBatchSize));
      } while (this.again);
    })().finally(() => {
      this.exporting = undefined;
    });
    return this.exporting;
  }

  private async send(spans: SpanData[]): Promise<void> {
    const body = this.o.protocol === 'http/json' ? encodeJson(this.o, spans) : encodeProtobuf(this.o, spans);
    const deadline = Date.now() + this.o.batch.exportTimeoutMs;
    let failure: Error | undefined;
    for (let attempt = 0; attempt <= RETRIES; attempt++) {
      const left = deadline - Date.now();
      if (left <= 0) break;
      try {
        const status = await this.post(body, Math.min(this.o.timeoutMs, left));
        if (status >= 200 && status < 300) {
          this.stats.exported += spans.length;
          return;
        }
        failure = new Error(`OTLP export to ${this.o.url}: HTTP ${status}`);
        if (!RETRYABLE.has(status)) break;
      } catch (err) {
        failure = new Error(`OTLP export to ${this.o.url} failed: ${(err as Error).message}`);
      }
      if (this.closing || attempt === RETRIES) break;
      await new Promise((r) => setTimeout(r, BACKOFF_MS * 2 ** attempt).unref());
    }
    this.stats.failed += spans.length;
    this.o.onError?.(failure ?? new Error(`OTLP export to ${this.o.url}: timed out`), spans.length);
  }

  /** One POST; resolves with the status once the answer has been read. */
  private post(body: string | Uint8Array, timeoutMs: number): Promise<number> {
    return new Promise((resolve, reject) => {
      const req = (this.url.protocol === 'https:' ? httpsRequest : httpRequest)(
        this.url,
        {
          method: 'POST',
          headers: { ...this.headers, 'content-length': Buffer.byteLength(body) },
          agent: this.agent,
          timeout: timeoutMs,
        },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error(`timed out after ${timeoutMs} ms`)));
      req.on('error', reject);
      req.end(body);
    });
  }
}

import type { Registry } from 'prom-client';

/**
 * A Prometheus histogram for the call path, which observes three of them on every call: an
 * observation is a bucket found and three additions on the label set's own arrays (its child is
 * looked up once and kept by the caller). prom-client's Histogram builds and hashes the label
 * set's key on every observation instead. The exposition is prom-client's own: this registers in
 * a prom-client Registry as a metric of type `histogram` and gives it the values prom-client's
 * Histogram would (`_bucket` per bound, cumulative, then `+Inf`, `_sum` and `_count`), so the
 * registry writes the same text (test/runtime/observability/histogram.test.ts compares them).
 */
export class CallHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  readonly name: string;
  readonly help: string;
  readonly labelNames: readonly string[];
  private readonly children = new Map<string, HistogramChild>();
  private readonly bounds: readonly number[];

  constructor(config: {
    name: string;
    help: string;
    labelNames?: readonly string[];
    buckets: readonly number[];
    registers: Registry[];
  }) {
    this.name = config.name;
    this.help = config.help;
    this.labelNames = config.labelNames ?? [];
    this.bounds = [...config.buckets].sort((a, b) => a - b);
    for (const r of config.registers) r.registerMetric(this as never);
    // Without labels there is one series, written (all zero) before anything is observed.
    if (this.labelNames.length === 0) this.labels();
  }

  /** The child of one label set, one value per label name in order; keep it to observe into. */
  labels(...values: string[]): HistogramChild {
    if (values.length !== this.labelNames.length) {
      throw new Error(`${this.name}: ${this.labelNames.length} label values expected, got ${values.length}`);
    }
    const key = values.join('\u0000');
    let c = this.children.get(key);
    if (!c) {
      const labels: Record<string, string> = {};
      this.labelNames.forEach((n, i) => {
        labels[n] = values[i]!;
      });
      c = new HistogramChild(this.bounds, labels);
      this.children.set(key, c);
    }
    return c;
  }

  /** Observes into the histogram without labels. */
  observe(value: number): void {
    this.labels().observe(value);
  }

  /** What prom-client's Registry reads to write the text exposition. */
  getForPromString() {
    const values: {
      labels: Record<string, string | number>;
      sharedLabels: Record<string, string>;
      value: number;
      metricName: string;
      /** prom-client's buckets carry one (null: none); its sum and count do not. */
      exemplar?: null;
    }[] = [];
    const bucket = `${this.name}_bucket`;
    for (const c of this.children.values()) {
      let acc = 0;
      this.bounds.forEach((le, i) => {
        acc += c.counts[i]!;
        values.push({
          labels: { le },
          sharedLabels: c.labelSet,
          value: acc,
          metricName: bucket,
          exemplar: null,
        });
      });
      values.push(
        {
          labels: { le: '+Inf' },
          sharedLabels: c.labelSet,
          value: c.count,
          metricName: bucket,
          exemplar: null,
        },
        { labels: {}, sharedLabels: c.labelSet, value: c.sum, metricName: `${this.name}_sum` },
        { labels: {}, sharedLabels: c.labelSet, value: c.count, metricName: `${this.name}_count` },
      );
    }
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
  }

  /** The JSON form (Registry.getMetricsAsJSON): each value's labels with its label set merged in. */
  get() {
    const m = this.getForPromString();
    return {
      ...m,
      values: m.values.map(({ labels, sharedLabels, ...rest }) => ({
        ...rest,
        labels: { ...labels, ...sharedLabels },
      })),
    };
  }

  reset(): void {
    for (const c of this.children.values()) c.reset();
  }
}

export class HistogramChild {
  /** Per bound, observations not above it and above the one before; the last slot: above all. */
  readonly counts: number[];
  sum = 0;
  count = 0;

  constructor(
    private readonly bounds: readonly number[],
    readonly labelSet: Record<string, string>,
  ) {
    this.counts = new Array<number>(bounds.length + 1).fill(0);
  }

  reset(): void {
    this.counts.fill(0);
    this.sum = 0;
    this.count = 0;
  }

  observe(value: number): void {
    if (!Number.isFinite(value)) throw new TypeError(`Value is not a valid number: ${value}`);
    const b = this.bounds;
    let i = 0;
    while (i < b.length && value > b[i]!) i++;
    this.counts[i]!++;
    this.sum += value;
    this.count++;
  }
}

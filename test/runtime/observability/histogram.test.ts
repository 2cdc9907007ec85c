import { Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { CallHistogram } from '../../../runtime/observability/histogram.ts';

/**
 * The call path's histograms (CallHistogram) write exactly what prom-client's Histogram writes
 * for the same observations: text and JSON, with and without labels, bounds included.
 */

const BUCKETS = [0.001, 0.005, 0.025, 0.1, 1];

function pair(labelNames: string[]) {
  const theirs = new Registry();
  const ours = new Registry();
  const config = { name: 'x_seconds', help: 'A "help" text \\ with escapes', buckets: BUCKETS };
  const ref = new Histogram({ ...config, labelNames, registers: [theirs] });
  const mine = new CallHistogram({ ...config, labelNames, registers: [ours] });
  return { theirs, ours, ref, mine };
}

describe('CallHistogram', () => {
  it('without labels: the same text before and after observations, bounds and +Inf included', async () => {
    const { theirs, ours, ref, mine } = pair([]);
    expect(await ours.metrics()).toBe(await theirs.metrics());
    for (const v of [0, 0.001, 0.0011, 0.005, 0.3, 1, 7.5, 1e-9]) {
      ref.observe(v);
      mine.observe(v);
    }
    expect(await ours.metrics()).toBe(await theirs.metrics());
    expect(await ours.getMetricsAsJSON()).toEqual(await theirs.getMetricsAsJSON());
  });

  it('with labels: one series per label set, in the order first observed, values escaped', async () => {
    const { theirs, ours, ref, mine } = pair(['model', 'provider']);
    const sets: [string, string][] = [
      ['claude-haiku-4-5', 'anthropic'],
      ['a "quoted" \\ model\nwith a newline', 'bedrock'],
      ['claude-haiku-4-5', 'vertex'],
    ];
    let seed = 1;
    for (let i = 0; i < 300; i++) {
      seed = (seed * 48271) % 2147483647;
      const [m, p] = sets[seed % sets.length]!;
      const v = (seed % 2000) / 1000;
      ref.labels(m, p).observe(v);
      mine.labels(m, p).observe(v);
    }
    expect(await ours.metrics()).toBe(await theirs.metrics());
    expect(await ours.getMetricsAsJSON()).toEqual(await theirs.getMetricsAsJSON());
  });

  it('refuses what prom-client refuses: a value that is not a finite number, the wrong label count', () => {
    const { mine } = pair(['outcome']);
    expect(() => mine.labels('ok').observe(Number.NaN)).toThrow(TypeError);
    expect(() => mine.labels('ok', 'extra')).toThrow(/1 label values expected, got 2/);
  });
});

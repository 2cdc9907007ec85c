import type Anthropic from '@anthropic-ai/sdk';
import { afterEach, describe, expect, it } from 'vitest';
import { type Harness, startHarness } from '../../helpers/harness.ts';
import { eventually } from '../backends/harness.ts';
import { startReceiver } from './receiver.ts';

/** One call: 16 input and 1,000 output tokens of claude-haiku-5-5 = 502 µ$; twenty fill the budget. */
const CEILING = '0.01004';
const T0 = Date.parse('2026-12-02T10:00:00Z');

const call = (c: Anthropic) =>
  c.messages.create({
    model: 'claude-haiku-5-5',
    max_tokens: 1000,
    messages: [{ role: 'user', content: 'go [[emulator:output_tokens=1000]]' }],
  });

let h: Harness | undefined;
let stop: (() => Promise<void>) | undefined;
afterEach(async () => {
  await h?.close();
  await stop?.();
  h = undefined;
  stop = undefined;
});

describe('budget alerts in a running gateway', () => {
  it('forecasts the ceiling from the recent spend rate, once per window', async () => {
    let clock = T0;
    h = await startHarness({
      now: () => clock,
      config: {
        budgets: { defaults: { team: { ceiling: CEILING, window: 'day' } } },
        // Checked only when the test drains: the samples fall at known times.
        alerts: { debounce: '1h', sweep: '1h' },
      },
    });
    const { client } = await h.client({ team: 'payments' });
    await call(client);
    await h.rt.alerts.drain();
    clock = T0 + 10 * 60_000;
    for (let i = 0; i < 4; i++) await call(client);
    await h.rt.alerts.drain();
    // $0.002008 in ten minutes; $0.00753 to go: the ceiling at 10:47:30.
    const forecasts = () => h!.rt.events.list({ kind: 'budget_forecast' });
    await eventually('the forecast alarm', async () => (await forecasts()).length === 1);
    const [f] = await forecasts();
    expect(f!.message).toBe(
      'at this rate team payments passes its daily ceiling $0.01004 at 10:47 UTC (spent $0.00251, $0.012048/h lately)',
    );
    expect(f).toMatchObject({
      subject: 'team:payments',
      details: { alert: 'forecast', crosses_at: '2026-12-02T10:47:30.000Z' },
    });
    clock = T0 + 20 * 60_000;
    for (let i = 0; i < 4; i++) await call(client);
    await h.rt.alerts.drain();
    await h.rt.alerts.sweep();
    expect(await forecasts()).toHaveLength(1);
  }, 60_000);

  it('never holds up a call: a webhook that does not answer leaves the calls flowing', async () => {
    const held: Array<() => void> = [];
    const r = await startReceiver();
    // A second receiver that takes the POST and never answers (until the test ends).
    const { createServer } = await import('node:http');
    const silent = createServer((_req, res) => held.push(() => res.end()));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const port = (silent.address() as { port: number }).port;
    stop = async () => {
      for (const f of held) f();
      silent.closeAllConnections();
      await new Promise((resolve) => silent.close(resolve));
      await r.close();
    };
    h = await startHarness({
      config: {
        budgets: { defaults: { team: { ceiling: CEILING, window: 'day' } } },
        alerts: {
          thresholds: [10],
          debounce: '10ms',
          sweep: '1h',
          webhooks: [{ url: `http://127.0.0.1:${port}/hook`, secret: 'whsec_never-answers-0123' }],
        },
      },
    });
    const { client } = await h.client({ team: 'payments' });
    for (let i = 0; i < 3; i++) await call(client);
    await eventually('the webhook to be waiting on its answer', () => held.length === 1);
    // The delivery hangs; calls go on.
    for (let i = 0; i < 3; i++) expect((await call(client)).usage.output_tokens).toBe(1000);
    expect(held).toHaveLength(1);
  }, 60_000);
});

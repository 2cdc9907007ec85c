import { afterEach, describe, expect, it } from 'vitest';
import { Destinations } from '../../../runtime/alerts/deliver.ts';
import { testAlert } from '../../../runtime/alerts/thresholds.ts';
import { createLogger } from '../../../runtime/log.ts';
import { startReceiver, verifySignature } from './receiver.ts';

const SECRET = 'whsec_delivery-test-0123456789';
const quiet = createLogger({ level: 'silent' });
const retry = { attempts: 3, backoffMs: 5 };
const receivers: Array<{ close(): Promise<void> }> = [];
afterEach(async () => {
  for (const r of receivers.splice(0)) await r.close();
});

async function receiver(answer?: Parameters<typeof startReceiver>[0]) {
  const r = await startReceiver(answer);
  receivers.push(r);
  return r;
}

const alert = () => testAlert(Date.now(), 'UTC');

describe('alert destinations', () => {
  it('signs each webhook attempt over its raw body with a fresh timestamp, and tries again after a 503', async () => {
    const r = await receiver((_req, n) => (n === 1 ? 503 : 200));
    const d = new Destinations(
      { webhooks: [{ url: `${r.url}/hook`, secret: SECRET }], slack: [], retry },
      quiet,
    );
    const [result] = await d.send(alert(), 'alm_1');
    expect(result).toMatchObject({ destination: 'webhook', url: r.url, ok: true, status: 200, attempts: 2 });
    expect(r.received).toHaveLength(2);
    for (const req of r.received) {
      expect(verifySignature(req, SECRET)).toBe(true);
      expect(req.headers['content-type']).toBe('application/json');
      expect(req.json).toMatchObject({ type: 'chokepoint.budget_alert', id: 'alm_1', kind: 'test' });
    }
    // A tampered body no longer matches its signature.
    const tampered = { ...r.received[0]!, raw: r.received[0]!.raw.replace('80', '81') };
    expect(verifySignature(tampered, SECRET)).toBe(false);
    // A replayed delivery is refused by a receiver that checks the timestamp.
    expect(verifySignature(r.received[0]!, SECRET, Date.now() + 10 * 60_000)).toBe(false);
  });

  it('gives up at once on a 4xx other than 408 and 429 (a wrong URL or secret), naming the status', async () => {
    const r = await receiver(() => 404);
    const d = new Destinations({ webhooks: [], slack: [{ url: `${r.url}/T000/B000/XXXX` }], retry }, quiet);
    const [result] = await d.send(alert(), 'alm_2');
    expect(result).toMatchObject({ destination: 'slack', ok: false, status: 404, attempts: 1 });
    // Only the origin is reported: an incoming-webhook URL's path is its secret.
    expect(result!.url).toBe(r.url);
  });

  it('tries a 429 and an unreachable host the configured number of times, then reports the failure', async () => {
    const busy = await receiver(() => 429);
    const gone = await receiver();
    const goneUrl = gone.url;
    await gone.close();
    const d = new Destinations(
      { webhooks: [{ url: `${goneUrl}/hook`, secret: SECRET }], slack: [{ url: `${busy.url}/s` }], retry },
      quiet,
    );
    const [hook, slack] = await d.send(alert(), 'alm_3');
    expect(hook).toMatchObject({ ok: false, attempts: 3 });
    expect(hook!.error).toMatch(/^POST to http:\/\/127\.0\.0\.1:\d+ failed: ECONNREFUSED/);
    expect(slack).toMatchObject({ ok: false, status: 429, attempts: 3 });
    expect(busy.received).toHaveLength(3);
  });

  it('sends Slack the incoming-webhook shape: text and blocks', async () => {
    const r = await receiver();
    const d = new Destinations({ webhooks: [], slack: [{ url: `${r.url}/s` }], retry }, quiet);
    await d.send(alert(), 'alm_4');
    const body = r.received[0]!.json;
    expect(Object.keys(body).sort()).toEqual(['blocks', 'text']);
    expect(body.text).toMatch(/^Test alert: test alert from Chokepoint/);
    expect(body.blocks.map((b: { type: string }) => b.type)).toEqual(['section', 'context']);
    expect(body.blocks[1].elements[0].text).toContain('`team:example` · spent $40.00 of $50.00');
  });

  it('stops waiting to retry when closed', async () => {
    const r = await receiver(() => 500);
    const d = new Destinations(
      { webhooks: [], slack: [{ url: `${r.url}/s` }], retry: { attempts: 5, backoffMs: 60_000 } },
      quiet,
    );
    const sent = d.send(alert(), 'alm_5');
    await new Promise<void>((resolve) => {
      const check = () => (r.received.length ? resolve() : setTimeout(check, 5));
      check();
    });
    d.close();
    // Closed during the first attempt or while waiting after it: either way, no second try.
    expect(await sent).toMatchObject([{ ok: false, attempts: 1 }]);
    expect(r.received).toHaveLength(1);
  });
});

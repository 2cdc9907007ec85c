import { createHmac } from 'node:crypto';
import { originOf, type PostResult, postJson } from '../../adapters/webhooks/post.ts';
import type { AlertSettings } from '../config/settings.ts';
import { budgetView } from '../gateway/refusal.ts';
import type { Logger } from '../log.ts';
import { formatUsd } from '../money.ts';
import type { BudgetAlert } from './thresholds.ts';

/**
 * Where alerts go besides the inbox: signed JSON webhooks and Slack incoming webhooks. Each
 * delivery is tried `retry.attempts` times, waiting `retry.backoff` before the first retry and
 * twice as long before each next one; a network failure, a timeout, 408, 429 and 5xx are tried
 * again, another 4xx is not (the URL or the secret is wrong: trying again will not help).
 *
 * The webhook signature: `x-chokepoint-signature: t=<unix seconds>,v1=<hex>` where hex is
 * HMAC-SHA256(secret, `<t>.<raw body>`). A receiver recomputes it over the bytes it received and
 * refuses a `t` more than five minutes from its own clock (a replayed delivery).
 */

export const SIGNATURE_HEADER = 'x-chokepoint-signature';

/** `t=<seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`. */
export function signature(secret: string, body: string, at: number): string {
  const t = Math.floor(at / 1000);
  const v1 = createHmac('sha256', secret).update(`${t}.${body}`).digest('hex');
  return `t=${t},v1=${v1}`;
}

/** The webhook's JSON body (`id` is the alarm's: the same alert in the inbox and here). */
export function webhookBody(alert: BudgetAlert, id: string): Record<string, unknown> {
  return {
    type: 'chokepoint.budget_alert',
    id,
    kind: alert.kind,
    at: new Date(alert.at).toISOString(),
    message: alert.message,
    budget: budgetView(alert.budget),
    percent: percent(alert),
    ...(alert.threshold !== undefined ? { threshold: alert.threshold } : {}),
    ...(alert.crossesAt !== undefined
      ? {
          forecast: {
            crosses_at: new Date(alert.crossesAt).toISOString(),
            rate_usd_per_hour: formatUsd(alert.ratePerHour ?? 0),
          },
        }
      : {}),
  };
}

/** Slack's incoming-webhook shape: `text` (notifications) and `blocks` (the message). */
export function slackBody(alert: BudgetAlert): Record<string, unknown> {
  const b = alert.budget;
  const title =
    alert.kind === 'refused'
      ? ':no_entry: Budget exhausted'
      : alert.kind === 'forecast'
        ? ':chart_with_upwards_trend: Budget forecast'
        : alert.kind === 'test'
          ? ':white_check_mark: Test alert'
          : `:warning: Budget at ${alert.threshold}%`;
  return {
    text: `${title.replace(/^:[a-z_]+: /, '')}: ${alert.message}`,
    blocks: [
      { type: 'section', text: { type: 'mrkdwn', text: `*${title}*\n${alert.message}` } },
      {
        type: 'context',
        elements: [
          {
            type: 'mrkdwn',
            text: `\`${b.scope}\` · spent $${formatUsd(b.spent)} of $${formatUsd(b.ceiling)} · window ${b.window} · Chokepoint`,
          },
        ],
      },
    ],
  };
}

function percent(a: BudgetAlert): number {
  return a.budget.ceiling > 0 ? Math.round((a.budget.spent * 1000) / a.budget.ceiling) / 10 : 0;
}

export interface Delivery {
  destination: 'webhook' | 'slack';
  /** The origin only: a webhook URL is often a secret. */
  url: string;
  name?: string;
  ok: boolean;
  status?: number;
  error?: string;
  attempts: number;
}

type Post = (url: string, body: string, headers: Record<string, string>) => Promise<PostResult>;

const retryable = (status: number) => status === 408 || status === 429 || status >= 500;

export class Destinations {
  private readonly aborts = new AbortController();

  constructor(
    private readonly settings: Pick<AlertSettings, 'webhooks' | 'slack' | 'retry'>,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
    private readonly timeoutMs = 5_000,
  ) {}

  get count(): number {
    return this.settings.webhooks.length + this.settings.slack.length;
  }

  /** Sends to every destination, each with its retries; never throws. */
  send(alert: BudgetAlert, id: string, opts: { attempts?: number } = {}): Promise<Delivery[]> {
    const attempts = opts.attempts ?? this.settings.retry.attempts;
    const json = webhookBody(alert, id);
    const slack = JSON.stringify(slackBody(alert));
    return Promise.all([
      ...this.settings.webhooks.map((w) =>
        this.deliver({ destination: 'webhook', url: w.url, name: w.name }, attempts, (post) => {
          // Signed at each attempt: a retry carries a fresh timestamp.
          const body = JSON.stringify(json);
          return post(w.url, body, {
            [SIGNATURE_HEADER]: signature(w.secret, body, this.now()),
            'x-chokepoint-alert-id': id,
            'user-agent': 'chokepoint-alerts',
          });
        }),
      ),
      ...this.settings.slack.map((s) =>
        this.deliver({ destination: 'slack', url: s.url, name: s.name }, attempts, (post) =>
          post(s.url, slack, { 'user-agent': 'chokepoint-alerts' }),
        ),
      ),
    ]);
  }

  /** Stops waiting retries (shutdown): their deliveries end as not delivered. */
  close(): void {
    this.aborts.abort();
  }

  private async deliver(
    to: { destination: Delivery['destination']; url: string; name?: string },
    attempts: number,
    attempt: (post: Post) => Promise<PostResult>,
  ): Promise<Delivery> {
    const signal = this.aborts.signal;
    const post: Post = (url, body, headers) =>
      postJson(url, body, headers, { timeoutMs: this.timeoutMs, signal });
    const where = {
      destination: to.destination,
      url: originOf(to.url),
      ...(to.name ? { name: to.name } : {}),
    };
    let last: { status?: number; error?: string } = {};
    for (let n = 1; n <= attempts; n++) {
      try {
        const { status } = await attempt(post);
        if (status >= 200 && status < 300) return { ...where, ok: true, status, attempts: n };
        last = { status };
        if (!retryable(status)) return { ...where, ok: false, status, attempts: n };
      } catch (err) {
        last = { error: (err as Error).message };
      }
      if (n < attempts && !signal.aborted) {
        const wait = this.settings.retry.backoffMs * 2 ** (n - 1);
        this.log.warn('alert delivery failed, trying again', {
          ...where,
          ...last,
          attempt: n,
          retryInMs: wait,
        });
        if (!(await sleep(wait, signal))) return { ...where, ok: false, ...last, attempts: n };
      } else if (signal.aborted) return { ...where, ok: false, ...last, attempts: n };
    }
    return { ...where, ok: false, ...last, attempts };
  }
}

/** Resolves true after `ms`, or false as soon as `signal` aborts. */
function sleep(ms: number, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const done = (ok: boolean) => {
      clearTimeout(t);
      signal.removeEventListener('abort', onAbort);
      resolve(ok);
    };
    const onAbort = () => done(false);
    const t = setTimeout(() => done(true), ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

// Load shapes for the HTTP benchmarks beyond autocannon's closed loop: a steady open-loop load
// spread evenly over time, and one call at a time (bench/gateway.ts, bench/hotpath.ts); and the closed
// loop the per-call tools share.
import { Agent, request as httpRequest } from 'node:http';
import autocannon from 'autocannon';
import { sample } from './procs.ts';

export interface Contender {
  name: string;
  urls: string[];
  headers: Record<string, string>;
  /** The contender's own processes (CPU and RSS); none for direct. */
  pids: number[];
  skip?: string;
}

export interface Measured {
  reqPerSec: number;
  p50: number;
  p90: number;
  p99: number;
  non2xx: number;
  errors: number;
  /** CPU of the contender's processes, % of one core. */
  cpuPct: number | null;
  /** CPU per request, µs. */
  cpuUsPerReq: number | null;
  rssMb: number | null;
}

export interface Sequential {
  n: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
}

export const pct = (sorted: number[], p: number) =>
  sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]! : Number.NaN;
export const r2 = (n: number) => Math.round(n * 100) / 100;
export const r3 = (n: number) => Math.round(n * 1000) / 1000;

/**
 * An open-loop load at `perSec` requests/s spread evenly over time (autocannon's overallRate sends
 * each second's quota in a burst, which measures queueing behind the burst): every millisecond the
 * requests that have fallen due are started, over keep-alive connections, each timed from its
 * start. Latency here is what a call pays under a steady load, queueing included.
 */
export async function paced(
  c: Contender,
  body: string | string[],
  secs: number,
  perSec: number,
): Promise<Measured> {
  const agent = new Agent({ keepAlive: true, maxSockets: 256 });
  // Several bodies are sent in turn (the turns of one conversation).
  const all = (Array.isArray(body) ? body : [body]).map((b) => {
    const bytes = Buffer.from(b);
    const headers = {
      'content-type': 'application/json',
      'content-length': String(bytes.length),
      ...c.headers,
    };
    return { bytes, headers };
  });
  const urls = c.urls.map((u) => new URL('/v1/messages', u));
  const latencies: number[] = [];
  let non2xx = 0;
  let errors = 0;
  let peakRss = 0;
  const inFlight = new Set<Promise<void>>();
  const one = (url: URL, n: number) => {
    const { bytes, headers } = all[n % all.length]!;
    const t0 = performance.now();
    const p = new Promise<void>((resolve) => {
      const req = httpRequest(url, { method: 'POST', agent, headers }, (res) => {
        res.on('data', () => {});
        res.on('end', () => {
          if (res.statusCode === 200) latencies.push(performance.now() - t0);
          else non2xx++;
          resolve();
        });
      });
      req.on('error', () => {
        errors++;
        resolve();
      });
      req.end(bytes);
    });
    inFlight.add(p);
    void p.then(() => inFlight.delete(p));
  };
  const before = sample(c.pids);
  const rssTimer = setInterval(() => {
    peakRss = Math.max(peakRss, sample(c.pids).rss);
  }, 250);
  const t0 = performance.now();
  const total = Math.round(secs * perSec);
  let sent = 0;
  await new Promise<void>((done) => {
    const tick = () => {
      const due = Math.min(total, Math.floor(((performance.now() - t0) / 1000) * perSec));
      while (sent < due) {
        one(urls[sent % urls.length]!, sent);
        sent++;
      }
      if (sent < total) setTimeout(tick, 1);
      else done();
    };
    tick();
  });
  await Promise.all(inFlight);
  const secsTaken = (performance.now() - t0) / 1000;
  clearInterval(rssTimer);
  agent.destroy();
  return measured({ latencies, secsTaken, before, pids: c.pids, peakRss, non2xx, errors }, r3);
}

/**
 * What a load run measured: req/s and latency percentiles (rounded with `round`), failures, and
 * the CPU and peak RSS of the contender's own processes since `before`.
 */
export function measured(
  run: {
    latencies: number[];
    secsTaken: number;
    before: { cpuMs: number };
    pids: number[];
    peakRss: number;
    non2xx: number;
    errors: number;
  },
  round: (n: number) => number,
): Measured {
  const { latencies, secsTaken, pids } = run;
  const after = sample(pids);
  latencies.sort((a, b) => a - b);
  const cpuMs = after.cpuMs - run.before.cpuMs;
  const own = pids.length > 0;
  return {
    reqPerSec: Math.round(latencies.length / secsTaken),
    p50: round(pct(latencies, 50)),
    p90: round(pct(latencies, 90)),
    p99: round(pct(latencies, 99)),
    non2xx: run.non2xx,
    errors: run.errors,
    cpuPct: own ? Math.round((cpuMs / (secsTaken * 1000)) * 100) : null,
    cpuUsPerReq: own && latencies.length ? Math.round((cpuMs * 1000) / latencies.length) : null,
    rssMb: own ? Math.round(Math.max(run.peakRss, after.rss) / 2 ** 20) : null,
  };
}

/**
 * One call at a time for `secs` over keep-alive connections (alternating between the contender's
 * processes), timed with performance.now(): the latency one call pays with nothing queued before
 * it, to a hundredth of a millisecond. The added latency the targets speak of is this minus
 * direct's.
 */
export async function sequential(c: Contender, body: string, secs: number): Promise<Sequential> {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const bytes = Buffer.from(body);
  const headers = {
    'content-type': 'application/json',
    'content-length': String(bytes.length),
    ...c.headers,
  };
  const one = (url: URL) =>
    new Promise<number>((resolve, reject) => {
      const t0 = performance.now();
      const req = httpRequest(url, { method: 'POST', agent, headers }, (res) => {
        res.on('data', () => {});
        res.on('end', () =>
          res.statusCode === 200
            ? resolve(performance.now() - t0)
            : reject(new Error(`HTTP ${res.statusCode}`)),
        );
      });
      req.on('error', reject);
      req.end(bytes);
    });
  const urls = c.urls.map((u) => new URL('/v1/messages', u));
  for (let i = 0; i < 200; i++) await one(urls[i % urls.length]!); // warm: JIT, sockets
  const latencies: number[] = [];
  const end = performance.now() + secs * 1000;
  for (let i = 0; performance.now() < end; i++) latencies.push(await one(urls[i % urls.length]!));
  agent.destroy();
  latencies.sort((a, b) => a - b);
  return {
    n: latencies.length,
    p50: r3(pct(latencies, 50)),
    p90: r3(pct(latencies, 90)),
    p99: r3(pct(latencies, 99)),
    p999: r3(pct(latencies, 99.9)),
  };
}

/** A contender's saturation measurement and its rounds (bench/gateway.ts `--rounds`). */
export interface Saturated {
  saturation?: Measured;
  rounds?: { reqPerSec: number; cpuUsPerReq: number | null }[];
}

export const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

/** Saturation req/s: the median round's (the one measurement's without rounds). */
export const reqPerSec = (r: Saturated) =>
  r.rounds?.length ? Math.round(median(r.rounds.map((x) => x.reqPerSec))) : r.saturation?.reqPerSec;

/**
 * `r`'s `pick` over `base`'s: the median of the ratios within each round when both ran the same
 * rounds (a slow spell of the machine falls on both), the ratio of the medians otherwise.
 */
export function withinRounds(
  r: Saturated,
  base: Saturated | undefined,
  pick: (round: { reqPerSec: number; cpuUsPerReq: number | null }) => number | null,
): number | undefined {
  if (!base?.saturation || !r.saturation) return undefined;
  const a = r.rounds ?? [];
  const b = base.rounds ?? [];
  if (a.length > 1 && a.length === b.length) {
    const ratios = a.flatMap((x, i) => {
      const [p, q] = [pick(x), pick(b[i]!)];
      return p === null || q === null || !Number.isFinite(p / q) ? [] : [p / q];
    });
    return ratios.length ? median(ratios) : undefined;
  }
  const whole = (s: Saturated) =>
    s.rounds?.length
      ? median(s.rounds.flatMap((x) => (pick(x) === null ? [] : [pick(x)!])))
      : pick({ reqPerSec: s.saturation!.reqPerSec, cpuUsPerReq: s.saturation!.cpuUsPerReq });
  const [p, q] = [whole(r), whole(base)];
  return p === null || q === null || !Number.isFinite(p / q) ? undefined : p / q;
}

/** `r`'s throughput as a share of `base`'s (see withinRounds). */
export const shareOf = (r: Saturated, base: Saturated | undefined): number | undefined =>
  withinRounds(r, base, (x) => x.reqPerSec);

/** The small Messages call the per-call tools send (perf-profile, syscalls, instructions). */
export function tinyMessages(stream: boolean): string {
  return JSON.stringify({
    model: 'claude-haiku-4-5',
    max_tokens: 64,
    ...(stream ? { stream: true } : {}),
    messages: [{ role: 'user', content: 'hi' }],
  });
}

/** autocannon's closed loop on `url`/v1/messages with `key` (none for a bare proxy); `opts` says
 * how much: `duration` (s) or `amount` (calls), `connections`, `overallRate`, `timeout`. */
export function loadMessages(
  url: string,
  key: string,
  body: string,
  opts: Omit<autocannon.Options, 'url' | 'method' | 'headers' | 'body'>,
): Promise<autocannon.Result> {
  return new Promise((resolve, reject) => {
    autocannon(
      {
        url: `${url}/v1/messages`,
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-api-key': key },
        body,
        ...opts,
      },
      (err, res) => (err ? reject(err) : resolve(res)),
    );
  });
}

/**
 * `maxTokens: fit` against `refuse`, measured: what share of a $10 seat Claude Code-shaped traffic
 * can actually spend before the gateway refuses, and how many calls it completes. Each of 4
 * concurrent clients sends Opus 5.5 calls with `max_tokens: 128000` (what Claude Code asks for),
 * a ~6,000-token prompt and ~1,500 output tokens (the emulator sizes the reply), until refused.
 * A real server in this process (embedded store, in-process emulator), one run per policy.
 *
 *   node bin/run-ts.js bench/max-tokens.ts
 *
 * Results: bench/results/max-tokens.json and a table on stdout.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { compose } from '../runtime/compose.ts';
import { resolveConfig } from '../runtime/config/load.ts';
import { createApp } from '../runtime/faces/http/app.ts';
import { listen } from '../runtime/faces/http/listen.ts';
import { createLogger } from '../runtime/log.ts';
import { formatUsd } from '../runtime/money.ts';

const TOKEN = 'cpo_bench-max-tokens-0123456789';
const CLIENTS = 4;
const PROMPT = `${'You are a coding agent. Follow the repository conventions. '.repeat(400)}`;

interface Result {
  policy: 'fit' | 'refuse';
  calls: number;
  fitted: number;
  spentMicros: number;
  ceilingMicros: number;
  share: number;
  overshootMicros: number;
}

async function runPolicy(policy: 'fit' | 'refuse'): Promise<Result> {
  const dataDir = mkdtempSync(join(tmpdir(), 'cp-bench-mt-'));
  const config = resolveConfig(
    {
      dataDir,
      server: { port: 0 },
      gateway: { maxTokens: policy },
      provider: { countTokensNearCeiling: false },
    },
    { env: { CHOKEPOINT_ADMIN_TOKEN: TOKEN } },
  );
  const rt = await compose(config, createLogger({ level: 'silent' }), { workflows: false });
  const l = await listen(createApp(rt), { port: 0, host: '127.0.0.1' });
  const api = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${l.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return (await res.json()) as Record<string, any>;
  };
  try {
    const created = await api('POST', '/api/keys', { team: 'bench', env: 'dev', seat: 'dev-1' });
    const key = created.key as string;
    await api('POST', '/api/budgets/seat:dev-1/ceiling', { amount: '10.00', reason: 'bench' });
    let calls = 0;
    let fitted = 0;
    const client = async () => {
      for (;;) {
        const res = await fetch(`${l.url}/v1/messages`, {
          method: 'POST',
          headers: { 'x-api-key': key, 'content-type': 'application/json' },
          body: JSON.stringify({
            model: 'claude-opus-5-5',
            max_tokens: 128_000,
            system: PROMPT,
            messages: [{ role: 'user', content: `step ${calls} [[emulator:output_tokens=1500]]` }],
          }),
        });
        await res.arrayBuffer();
        if (res.status !== 200) return;
        calls++;
        if (res.headers.get('x-chokepoint-max-tokens')) fitted++;
      }
    };
    await Promise.all(Array.from({ length: CLIENTS }, client));
    const b = (await api('GET', '/api/budgets/seat:dev-1')).budget;
    return {
      policy,
      calls,
      fitted,
      spentMicros: b.spent_micros,
      ceilingMicros: b.ceiling_micros,
      share: b.spent_micros / b.ceiling_micros,
      overshootMicros: Math.max(0, b.spent_micros - b.ceiling_micros),
    };
  } finally {
    await l.close(1000);
    await rt.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

async function main() {
  const results = [await runPolicy('refuse'), await runPolicy('fit')];
  console.log('policy  calls  fitted  spent      of ceiling  overshoot');
  for (const r of results) {
    console.log(
      `${r.policy.padEnd(7)} ${String(r.calls).padStart(5)}  ${String(r.fitted).padStart(6)}  $${formatUsd(r.spentMicros).padEnd(9)} ${(r.share * 100).toFixed(1).padStart(9)}%  $${formatUsd(r.overshootMicros)}`,
    );
  }
  const out = fileURLToPath(new URL('./results/max-tokens.json', import.meta.url));
  writeFileSync(
    out,
    `${JSON.stringify({ at: new Date().toISOString(), clients: CLIENTS, results }, null, 2)}\n`,
  );
  if (results.some((r) => r.overshootMicros > 0)) process.exit(1);
}

void main();

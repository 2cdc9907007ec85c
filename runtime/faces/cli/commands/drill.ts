import { tryParseUsd } from '../../../money.ts';
import { CliError, type Command, REMOTE_HELP } from '../command.ts';
import { runDrill } from '../drill.ts';
import { DRILL_PROVIDERS, DrillFaceError, type DrillProvider } from '../drill-faces.ts';

export const drillCommand: Command = {
  name: 'drill',
  summary: 'replay a runaway agent against a running server: refused, or merely reported?',
  remote: true,
  help: `Usage: chokepoint drill [--provider anthropic|bedrock|vertex] [--geo G] [--ceiling 0.50]
                       [--model M] [--max-calls N] [--json]

Against a running Chokepoint, creates a throwaway seat with a small ceiling and replays a runaway
coding-agent session (a loop resending a long, growing context) through the gateway face of the
provider you name, in that face's wire format, so you see what your agents' client would see:
  anthropic  POST /v1/messages (x-api-key); refused 429 rate_limit_error
  bedrock    POST /bedrock/model/<geo>.anthropic.<model>/invoke (Bearer key, Bedrock body);
             refused 400 ServiceQuotaExceededException, which no AWS client retries
  vertex     POST /vertex/projects/…/locations/<geo>/publishers/anthropic/models/<model>:rawPredict
             (Bearer key, Vertex body); refused 429 RESOURCE_EXHAUSTED
On every face the refusal carries chokepoint.code = budget_exhausted. Reports how many calls got
through and what they cost, when and with which code the gateway refused, what the same loop
would cost unbounded (uncached and cached), how fast a kill switch took effect, and whether a
timestamp inserted into the system prompt was caught as prefix drift (both on the same face),
and which provider the seat's ledger entries name (the face's calls go to the provider of its
kind unless routing says otherwise). Cleans up after itself (keys revoked, kill switches lifted).

Exit code 0 only if the runaway was refused (budget_exhausted, in the face's own error shape)
within its ceiling.

Options:
  --provider P         the face to drill: ${DRILL_PROVIDERS.join(', ')} (default anthropic)
  --geo G              bedrock: the inference profile prefix (us, eu, apac, global, …; default us);
                       vertex: the location (global, us-east5, europe-west1, …; default global)
  --ceiling USD        ceiling of the throwaway seat (default 0.50)
  --model M            model the runaway uses (default claude-sonnet-5-5)
  --max-calls N        give up (and fail) after this many calls got through (default 200)
  --unbounded-calls N  iterations for the unbounded-cost estimate (default 2000)
${REMOTE_HELP}

Examples:
  CHOKEPOINT_TOKEN=$(cat .chokepoint/admin-token) chokepoint drill
  chokepoint drill --provider bedrock --geo eu
  chokepoint drill --provider vertex --model claude-haiku-4-5`,
  options: {
    provider: { type: 'string' },
    geo: { type: 'string' },
    ceiling: { type: 'string' },
    model: { type: 'string' },
    'max-calls': { type: 'string' },
    'unbounded-calls': { type: 'string' },
  },
  async run({ values, out, err }) {
    const url = (
      (values.url as string | undefined) ??
      process.env.CHOKEPOINT_URL ??
      'http://127.0.0.1:8787'
    ).replace(/\/$/, '');
    const token = (values.token as string | undefined) ?? process.env.CHOKEPOINT_TOKEN;
    if (!token) {
      throw new CliError(
        'no operator token: pass --token or set CHOKEPOINT_TOKEN (`npm start` prints it; it is also in .chokepoint/admin-token)',
      );
    }
    const ceiling = (values.ceiling as string | undefined) ?? '0.50';
    if (tryParseUsd(ceiling) === undefined)
      throw new CliError(`--ceiling: expected a dollar amount like "0.50", got ${JSON.stringify(ceiling)}`);
    const int = (name: string, dflt: number) => {
      const v = values[name];
      if (v === undefined) return dflt;
      const n = Number(v);
      if (!Number.isInteger(n) || n < 1)
        throw new CliError(`--${name}: expected a positive integer, got ${JSON.stringify(v)}`);
      return n;
    };
    const provider = (values.provider as string | undefined) ?? 'anthropic';
    if (!(DRILL_PROVIDERS as readonly string[]).includes(provider)) {
      throw new CliError(
        `--provider: unknown provider ${JSON.stringify(provider)} (expected one of ${DRILL_PROVIDERS.join(', ')})`,
      );
    }
    const json = Boolean(values.json);
    let report: Awaited<ReturnType<typeof runDrill>>;
    try {
      report = await runDrill({
        url,
        token,
        ceiling,
        model: (values.model as string | undefined) ?? 'claude-sonnet-5-5',
        provider: provider as DrillProvider,
        ...(values.geo !== undefined ? { geo: values.geo as string } : {}),
        maxCalls: int('max-calls', 200),
        unboundedCalls: int('unbounded-calls', 2000),
        progress: json ? () => {} : err,
      });
    } catch (e) {
      if (e instanceof DrillFaceError) throw new CliError(e.message);
      const msg = (e as Error).message;
      if (/fetch failed|ECONNREFUSED/.test(msg + String((e as { cause?: unknown }).cause))) {
        throw new CliError(
          `cannot reach Chokepoint at ${url}: is it running? (start it with \`chokepoint serve\`)`,
          1,
        );
      }
      throw new CliError(msg, 1);
    }
    if (json) out(JSON.stringify(report, null, 2));
    else {
      const r = report;
      out('');
      out(`runaway on ${r.model}, seat ${r.seat}, ceiling $${r.ceilingUsd}`);
      out(`  provider          ${r.provider}: ${r.face}`);
      out(`  calls through     ${r.callsThrough}, costing $${r.spentUsd}`);
      out(
        `  ledger provider   ${r.ledgerProviders.map((p) => `${p.provider} (${p.calls} calls, $${p.costUsd})`).join(', ') || 'none'}`,
      );
      out(
        r.refusedAtCall
          ? `  refused           at call ${r.refusedAtCall} after ${r.secondsToRefusal?.toFixed(1)} s: ${r.refusalStatus} ${r.refusalErrorType}, ${r.refusalCode} — ${r.refusalMessage}`
          : '  refused           NEVER',
      );
      out(`  within ceiling    ${r.withinCeiling ? 'yes' : 'NO'}`);
      out(
        `  unbounded         ${r.unbounded.calls} calls, ${r.unbounded.inputTokens.toLocaleString('en-US')} input tokens: $${r.unbounded.uncachedUsd} uncached, $${r.unbounded.cachedUsd} with a cached prefix`,
      );
      out(
        `  kill switch       ${r.killSwitch.tookEffectOnNextRequest ? `took effect on the next request (${r.killSwitch.msFromFlipToRefusal} ms after the flip)` : 'did NOT take effect on the next request'}`,
      );
      out(`  prefix drift      ${r.drift.caught ? `caught: ${r.drift.description}` : 'NOT caught'}`);
      out('');
      out(
        r.passed
          ? `PASS: the runaway was refused within its ceiling on the ${r.provider} face.`
          : `FAIL: the runaway was not refused within its ceiling on the ${r.provider} face.`,
      );
    }
    return report.passed ? 0 : 1;
  },
};

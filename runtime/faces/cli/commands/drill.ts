import { tryParseUsd } from '../../../money.ts';
import { CliError, type Command, REMOTE_HELP } from '../command.ts';
import { runDrill } from '../drill.ts';

export const drillCommand: Command = {
  name: 'drill',
  summary: 'replay a runaway agent against a running server: refused, or merely reported?',
  remote: true,
  help: `Usage: chokepoint drill [--ceiling 0.50] [--model M] [--max-calls N] [--json]

Against a running Chokepoint, creates a throwaway seat with a small ceiling and replays a runaway
coding-agent session (a loop resending a long, growing context). Reports how many calls got
through and what they cost, when and with which code the gateway refused, what the same loop
would cost unbounded (uncached and cached), how fast a kill switch took effect, and whether a
timestamp inserted into the system prompt was caught as prefix drift. Cleans up after itself
(keys revoked, kill switches lifted).

Exit code 0 only if the runaway was refused (budget_exhausted) within its ceiling.

Options:
  --ceiling USD        ceiling of the throwaway seat (default 0.50)
  --model M            model the runaway uses (default claude-sonnet-5-5)
  --max-calls N        give up (and fail) after this many calls got through (default 200)
  --unbounded-calls N  iterations for the unbounded-cost estimate (default 2000)
${REMOTE_HELP}

Example:
  CHOKEPOINT_TOKEN=$(cat .chokepoint/admin-token) chokepoint drill`,
  options: {
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
    const json = Boolean(values.json);
    let report: Awaited<ReturnType<typeof runDrill>>;
    try {
      report = await runDrill({
        url,
        token,
        ceiling,
        model: (values.model as string | undefined) ?? 'claude-sonnet-5-5',
        maxCalls: int('max-calls', 200),
        unboundedCalls: int('unbounded-calls', 2000),
        progress: json ? () => {} : err,
      });
    } catch (e) {
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
      out(`  calls through     ${r.callsThrough}, costing $${r.spentUsd}`);
      out(
        r.refusedAtCall
          ? `  refused           at call ${r.refusedAtCall} after ${r.secondsToRefusal?.toFixed(1)} s: ${r.refusalCode} — ${r.refusalMessage}`
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
          ? 'PASS: the runaway was refused within its ceiling.'
          : 'FAIL: the runaway was not refused within its ceiling.',
      );
    }
    return report.passed ? 0 : 1;
  },
};

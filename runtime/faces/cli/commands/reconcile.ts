import { readFileSync } from 'node:fs';
import { REPORT_FORMATS, type ReportFormat } from '../../../reconcile/report.ts';
import { yesterday } from '../../../reconciler/service.ts';
import type { ReconciliationsResponse, ReconciliationView } from '../../views/reconciliations.ts';
import { ApiClient, printJson, type SubUsage, subArgs, withJsonErrors } from '../client.ts';
import { CliError, type Command, type CommandContext, REMOTE_HELP } from '../command.ts';
import { dollars, keyValues, shortTime, table } from '../table.ts';

/** Exit code of a reconciliation that diverged beyond tolerance (cron jobs can act on it). */
export const EXIT_DIVERGENT = 4;

const SUBS = {
  run: {
    command: 'reconcile',
    usage:
      'reconcile [--day YYYY-MM-DD] [--report FILE] [--format FORMAT] [--provider NAME] [--requests FILE]',
    args: [],
    options: ['day', 'report', 'format', 'provider', 'requests'],
  },
  ls: {
    command: 'reconcile ls',
    usage: 'reconcile ls [--day YYYY-MM-DD] [--limit N]',
    args: [],
    options: ['day', 'limit'],
  },
  show: { command: 'reconcile show', usage: 'reconcile show <id>', args: ['<id>'] },
} satisfies Record<string, SubUsage>;

export const reconcileCommand: Command = {
  name: 'reconcile',
  summary: 'compare the ledger with the provider bill',
  remote: true,
  help: `Usage:
  chokepoint reconcile [--day YYYY-MM-DD] [--report FILE] [--format FORMAT] [--provider NAME] [--requests FILE]
                                                                              reconcile one day
  chokepoint reconcile ls [--day YYYY-MM-DD] [--limit N]                      stored results
  chokepoint reconcile show <id>                                              one result

Compares the ledger's cost per model for one UTC day with the provider's figures and prints
ledger vs provider per model with the difference and a verdict. A difference beyond the
tolerance (reconcile.tolerance: 1% with a one-cent floor by default) raises a \`reconciliation\`
alarm (GET /api/alarms, the inbox's spend page, and reconcile.webhookUrl). Every result is
stored (GET /api/reconciliations). The server does the work, so the ledger and the provider
are the server's own.

Expired charges: a call whose outcome was unknown (its process died, its settlement never came)
is in the ledger as \`expired\`, charged its reserved worst case. With the provider's figures per
request, reconciliation corrects each one first: one \`corrected\` ledger entry per request id
(billed minus charged; never twice, however often you reconcile), credited or debited on the
budgets whose window still holds the charge (a closed day is not reopened: the ledger and the
spend views carry the correction). A charge the provider never billed is corrected to 0 only when
the figures certainly cover the call's time; otherwise it stands.

Options:
  --day DAY        the UTC day (default: yesterday)
  --report FILE    the provider's figures; - reads stdin. Without it the server fetches the cost
                   report from the provider's Admin API (needs ANTHROPIC_ADMIN_KEY or
                   provider.adminApiKey on the server; the emulator needs none)
  --format FORMAT  ${REPORT_FORMATS.join(' | ')} (default: detected)
                     anthropic-cost   Admin API cost report JSON (amount in cents, decimal string)
                     anthropic-usage  Admin API usage report JSON grouped by model (tokens, priced
                                      with the server's price table)
                     csv              date,model,cost_usd lines (any other billing source)
                     aws-cur          an AWS Cost and Usage Report 2.0 CSV (Claude on Bedrock,
                                      AWS Marketplace lines included)
                     gcp-billing      a Google Cloud Billing export CSV (Claude on Vertex AI)
                     openai-costs     OpenAI's organization costs API JSON
  --provider NAME  whose bill it is (a provider's name in the config): the ledger is compared on
                   that provider's calls only (default: the format's — aws-cur bedrock,
                   gcp-billing vertex, openai-costs openai, the others the default provider)
  --requests FILE  the provider's figures per request: a CSV with the header request_id,cost_usd
                   and optionally at (RFC 3339 or epoch ms; with it, requests it does not list
                   between its first and last time count as never billed); - reads stdin.
                   Without it, when the server's provider is the emulator, its billing record
                   (GET /_emulator/billing) is used; otherwise expired charges are left as they are
  --limit N        ls: how many (default 20)
${REMOTE_HELP}

Exit codes: 0 the figures agree within tolerance, ${EXIT_DIVERGENT} they diverge (an alarm was raised),
1 the server refused (a malformed report names the line or field; nothing is stored),
2 a usage error.

Examples:
  chokepoint reconcile --day 2026-01-31
  chokepoint reconcile --day 2026-01-31 --report cost_report.json
  chokepoint reconcile --day 2026-01-31 --report cur-2026-01.csv          # the Bedrock bill
  chokepoint reconcile --day 2026-01-31 --report bedrock.csv --format csv --provider bedrock
  chokepoint reconcile --day 2026-01-31 --report cost_report.json --requests per-request.csv
  curl -s -H "x-api-key: $ANTHROPIC_ADMIN_KEY" -H "anthropic-version: 2023-06-01" \\
    "https://api.anthropic.com/v1/organizations/usage_report/messages?starting_at=2026-01-31T00:00:00Z&ending_at=2026-02-01T00:00:00Z&bucket_width=1d&group_by[]=model" \\
    | chokepoint reconcile --day 2026-01-31 --report - --format anthropic-usage
  chokepoint reconcile ls --day 2026-01-31`,
  options: {
    day: { type: 'string' },
    report: { type: 'string' },
    format: { type: 'string' },
    provider: { type: 'string' },
    requests: { type: 'string' },
    limit: { type: 'string' },
  },
  async run(ctx) {
    const [sub, ...rest] = ctx.positionals;
    switch (sub) {
      case undefined:
      case 'run':
        return run(ctx, rest);
      case 'ls':
      case 'list':
        return list(ctx, rest);
      case 'show':
        return show(ctx, rest);
      default:
        throw new CliError(
          `unknown subcommand ${JSON.stringify(sub)}: expected ls or show (or none, to reconcile)\n` +
            'run `chokepoint reconcile --help` for usage',
        );
    }
  },
};

function checkDay(v: unknown): string | undefined {
  if (v === undefined) return undefined;
  const day = String(v);
  const t = Date.parse(`${day}T00:00:00Z`);
  if (!/^\d{4}-\d{2}-\d{2}$/.test(day) || Number.isNaN(t) || new Date(t).toISOString().slice(0, 10) !== day) {
    throw new CliError(`--day: expected a date like 2026-01-31, got ${JSON.stringify(day)}`);
  }
  return day;
}

function readReport(path: string, option = '--report'): string {
  try {
    return readFileSync(path === '-' ? 0 : path, 'utf8');
  } catch (err) {
    throw new CliError(
      `${option}: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    );
  }
}

async function run({ values, out }: CommandContext, args: string[]) {
  subArgs(SUBS.run, values, args);
  const day = checkDay(values.day) ?? yesterday(Date.now());
  const format = values.format as string | undefined;
  if (format !== undefined && !REPORT_FORMATS.includes(format as ReportFormat)) {
    throw new CliError(
      `--format: expected one of ${REPORT_FORMATS.join(', ')}, got ${JSON.stringify(format)}`,
    );
  }
  if (values.report === '-' && values.requests === '-') {
    throw new CliError('--report and --requests cannot both read stdin: give one of them a file');
  }
  const report = values.report === undefined ? undefined : readReport(String(values.report));
  const requests =
    values.requests === undefined ? undefined : readReport(String(values.requests), '--requests');
  const { client, json } = ApiClient.from(values);
  return withJsonErrors(json, out, async () => {
    const res = await client.post<ReconciliationView>('/api/reconciliations', {
      day,
      trigger: 'cli',
      ...(report !== undefined ? { report } : {}),
      ...(format ? { format } : {}),
      ...(values.provider !== undefined ? { provider: String(values.provider) } : {}),
      ...(requests !== undefined ? { requests } : {}),
    });
    if (json) printJson(out, res);
    else for (const line of describe(res)) out(line);
    return res.verdict === 'divergent' ? EXIT_DIVERGENT : 0;
  });
}

export function describe(r: ReconciliationView): string[] {
  const rows = [...r.rows, r.total];
  const lines = table(
    [
      'MODEL',
      { header: 'LEDGER', align: 'right' },
      { header: 'PROVIDER', align: 'right' },
      { header: 'DIFF', align: 'right' },
      { header: 'DIFF %', align: 'right' },
      'VERDICT',
    ],
    rows.map((x) => [
      x.model,
      dollars(x.ledger_usd),
      dollars(x.provider_usd),
      dollars(x.diff_usd),
      x.relative_pct,
      x.verdict,
    ]),
  );
  const tol = `${(r.tolerance.relative * 100).toFixed(2).replace(/\.?0+$/, '')}% or ${dollars(r.tolerance.absolute_usd)}, whichever is larger`;
  const out = [
    `reconciliation ${r.day} (UTC): ${r.verdict === 'ok' ? 'OK, the ledger matches the provider within tolerance' : 'DIVERGENT'}`,
    `provider figures: ${r.provider}'s bill, ${r.source.kind === 'fetched' ? 'fetched from the Admin API' : 'report'} (${r.source.format}); tolerance ${tol}`,
    '',
    ...lines,
  ];
  const accounts = Object.entries(r.accounts);
  if (accounts.length) {
    out.push(
      '',
      ...table(
        ['PROVIDER ACCOUNT', { header: 'COST', align: 'right' }],
        accounts.map(([k, v]) => [k, dollars(v)]),
      ),
    );
  }
  const c = r.corrections;
  if (c) {
    const left = c.left_uncovered + c.left_ambiguous;
    out.push(
      '',
      `expired charges (${c.source === 'emulator' ? "the emulator's record" : 'per-request CSV'}): ${c.expired} on the day, ` +
        `${c.corrected} corrected by ${dollars(c.corrected_usd)}` +
        (c.already_corrected ? `, ${c.already_corrected} corrected before` : '') +
        (left
          ? `, ${left} left at their worst case (${c.left_uncovered} not certainly covered by the bill, ${c.left_ambiguous} ambiguous)`
          : ''),
    );
  }
  out.push('');
  if (r.alarm_id) out.push(`alarm ${r.alarm_id} raised (GET /api/alarms?kind=reconciliation)`);
  if (r.webhook)
    out.push(
      `webhook ${r.webhook.url}: ${r.webhook.ok ? `delivered (${r.webhook.status})` : `NOT delivered (${r.webhook.status ?? r.webhook.error})`}`,
    );
  out.push(`stored as ${r.id}`);
  return out;
}

async function list({ values, out }: CommandContext, args: string[]) {
  subArgs(SUBS.ls, values, args);
  const day = checkDay(values.day);
  const limit = values.limit === undefined ? 20 : Number(values.limit);
  if (!Number.isInteger(limit) || limit < 1 || limit > 1000) {
    throw new CliError(`--limit: expected an integer 1-1000, got ${JSON.stringify(values.limit)}`);
  }
  const { client, json } = ApiClient.from(values);
  return withJsonErrors(json, out, async () => {
    const q = new URLSearchParams({ limit: String(limit), ...(day ? { day } : {}) });
    const res = await client.get<ReconciliationsResponse>(`/api/reconciliations?${q}`);
    if (json) return printJson(out, res);
    if (!res.reconciliations.length) out(day ? `no reconciliation of ${day} yet` : 'no reconciliations yet');
    else {
      for (const line of table(
        [
          'DAY',
          'VERDICT',
          { header: 'LEDGER', align: 'right' },
          { header: 'PROVIDER', align: 'right' },
          { header: 'DIFF', align: 'right' },
          'SOURCE',
          'TRIGGER',
          'AT',
          'ID',
        ],
        res.reconciliations.map((r) => [
          r.day,
          r.verdict,
          dollars(r.total.ledger_usd),
          dollars(r.total.provider_usd),
          dollars(r.total.diff_usd),
          r.source.format,
          r.trigger,
          shortTime(r.at),
          r.id,
        ]),
      ))
        out(line);
    }
    out(
      `\ndaily job: ${res.schedule.kind === 'off' ? 'off' : `${res.schedule.kind}, next ${shortTime(res.schedule.next_at)}`}`,
    );
    return 0;
  });
}

async function show({ values, out }: CommandContext, args: string[]) {
  const [id] = subArgs(SUBS.show, values, args) as [string];
  const { client, json } = ApiClient.from(values);
  return withJsonErrors(json, out, async () => {
    const res = await client.get<ReconciliationView>(`/api/reconciliations/${encodeURIComponent(id)}`);
    if (json) return printJson(out, res);
    for (const line of describe(res)) out(line);
    for (const line of keyValues([
      ['ran', `${shortTime(res.at)} by ${res.actor} (${res.trigger}), ${res.duration_ms} ms`],
    ]))
      out(line);
    return 0;
  });
}

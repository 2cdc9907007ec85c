import type { PricesReloadResponse, PricesResponse, PriceView } from '../../views/prices.ts';
import { ApiClient, printJson, type SubUsage, subArgs, withJsonErrors } from '../client.ts';
import { CliError, type Command, type CommandContext, REMOTE_HELP } from '../command.ts';
import { type Column, shortTime, table } from '../table.ts';

const LIST: SubUsage = { command: 'prices', usage: 'prices [--all]', args: [], options: ['all'] };
const RELOAD: SubUsage = {
  command: 'prices reload',
  usage: 'prices reload [--reason TEXT]',
  args: [],
  options: ['reason'],
};

export const pricesCommand: Command = {
  name: 'prices',
  summary: 'the price table, prices missing for models seen lately, end-of-life dates',
  remote: true,
  help: `Usage:
  chokepoint prices [--all]                 the price table (USD per million tokens), the models
                                            refused as unknown in the last 24 h with the \`prices:\`
                                            entry to add for each, and end-of-life dates
  chokepoint prices reload [--reason TEXT]  re-read the server's config file now: prices and
                                            routing only (audited)

A call to a model with no price is refused (Chokepoint fails closed, code "unknown_model" in the
ledger). Add the printed entry to chokepoint.config.yaml with the provider's list prices: the
server reloads prices and routing when the file changes (or on SIGHUP, or \`prices reload\`),
without a restart. STATUS is the model's end of life: "retiring" within 60 days, "retired" from
its date on (the provider no longer serves it); "from" marks rates that start later, "until"
(with --all) rates a later row replaced.

Options:
  --all          also list retired models and the rates later rows replaced
  --reason TEXT  (reload) why, for the audit log (default "prices reload")
${REMOTE_HELP}

Examples:
  chokepoint prices
  chokepoint prices --all --json
  chokepoint prices reload --reason "added claude-opus-9 at list price"`,
  options: {
    all: { type: 'boolean' },
    reason: { type: 'string' },
  },
  async run(ctx) {
    const [sub, ...rest] = ctx.positionals;
    if (sub === undefined || sub === 'ls' || sub === 'list') return listPrices(ctx, rest);
    if (sub === 'reload') return reload(ctx, rest);
    throw new CliError(
      `unknown subcommand ${JSON.stringify(sub)}: expected ls or reload\nrun \`chokepoint prices --help\` for usage`,
    );
  },
};

async function listPrices({ values, out }: CommandContext, args: string[]) {
  subArgs(LIST, values, args);
  const { client, json } = ApiClient.from(values);
  return withJsonErrors(json, out, async () => {
    const res = await client.get<PricesResponse>('/api/prices');
    if (json) return printJson(out, res);
    for (const line of pricesReport(res, values.all === true)) out(line);
    return 0;
  });
}

/** The human report: table, end-of-life summary, missing prices with the entry to add. */
export function pricesReport(res: PricesResponse, all = false): string[] {
  const lines = [
    'prices in USD per million tokens (MTok): IN input, 5M/1H cache writes, READ cache reads, OUT output',
    ...priceTable(res.prices, all),
  ];
  const current = res.prices.filter((p) => p.effective === 'current');
  const tiers = current.filter((p) => p.long_context || p.fast).length;
  if (tiers) lines.push(`(${tiers} models also have long-context or fast-mode rates: see --json)`);
  const retiring = current.filter((p) => p.status === 'retiring');
  const retired = current.filter((p) => p.status === 'retired');
  if (retiring.length || retired.length) {
    lines.push(
      '',
      `end of life: ${retiring.length} retiring within 60 days${
        retiring.length ? ` (${retiring.map((p) => `${p.model} ${p.retires}`).join(', ')})` : ''
      }, ${retired.length} retired${all ? '' : ' (listed with --all)'}`,
    );
  }
  lines.push('');
  if (res.missing.length === 0) {
    lines.push('missing prices (last 24 h): none (no call was refused for an unknown model)');
    return lines;
  }
  lines.push(
    `missing prices (last 24 h): ${res.missing.length} model${res.missing.length === 1 ? '' : 's'} refused as unknown (Chokepoint fails closed)`,
    ...table(
      ['MODEL', { header: 'CALLS', align: 'right' }, 'LAST SEEN'],
      res.missing.map((m) => [m.model, m.calls, shortTime(m.last_seen)]),
    ),
    '',
    "add to chokepoint.config.yaml (rates from the provider's pricing page; prices reload without a restart):",
    '',
    // The gateway's own entry per model; after the first, without the repeated `prices:` line,
    // so the whole block pastes as one YAML list.
    ...res.missing.flatMap((m, i) =>
      (i === 0 ? m.prices_entry : m.prices_entry.replace(/^prices:\n/, '')).split('\n'),
    ),
  );
  return lines;
}

function priceTable(prices: PriceView[], all: boolean): string[] {
  const right = (header: string): Column => ({ header, align: 'right' });
  const rows = prices.filter(
    (p) => all || (p.effective !== 'past' && !(p.effective === 'current' && p.status === 'retired')),
  );
  return table(
    ['MODEL', right('IN'), right('5M'), right('1H'), right('READ'), right('OUT'), right('MAX OUT'), 'STATUS'],
    rows.map((p) => {
      const r = p.rates_usd_per_mtok;
      return [
        p.model,
        rate(r.input),
        rate(r.cacheWrite5m),
        rate(r.cacheWrite1h),
        rate(r.cacheRead),
        rate(r.output),
        p.max_output_tokens.toLocaleString('en-US'),
        status(p, prices),
      ];
    }),
  );
}

function status(p: PriceView, prices: PriceView[]): string {
  if (p.effective === 'future') return `from ${p.from}`;
  if (p.effective === 'past') {
    const next = prices
      .filter((x) => x.model === p.model && x.from > p.from)
      .map((x) => x.from)
      .sort()[0];
    return next ? `until ${next}` : 'replaced';
  }
  return p.status === 'active' ? 'active' : `${p.status} ${p.retires}`;
}

/** `3`, `0.3`, `3.75`, `0.125`: as many decimals as the rate has, no float noise. */
function rate(n: number): string {
  return String(Number(n.toPrecision(10)));
}

async function reload({ values, out }: CommandContext, args: string[]) {
  subArgs(RELOAD, values, args);
  const { client, json } = ApiClient.from(values);
  const reason = typeof values.reason === 'string' && values.reason.trim() ? values.reason.trim() : undefined;
  return withJsonErrors(json, out, async () => {
    const res = await client.post<PricesReloadResponse>('/api/prices/reload', reason ? { reason } : {});
    if (json) return printJson(out, res);
    out(`reloaded prices and routing from ${res.file}: ${res.models} models priced (${res.entries} entries)`);
    if (res.restart_needed.length) {
      out(
        `not applied until the next start (only prices and routing reload): ${res.restart_needed.join(', ')}`,
      );
    }
    for (const e of res.end_of_life) out(`  end of life: ${e.summary}`);
    return 0;
  });
}

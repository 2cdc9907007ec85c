import { SCOPE_KINDS, type ScopeKind } from '../../../identity.ts';
import { formatUsd, tryParseUsd } from '../../../money.ts';
import type { AuditView } from '../../views/audit.ts';
import type {
  BudgetChangedResponse,
  BudgetResponse,
  BudgetsResponse,
  BudgetView,
} from '../../views/budgets.ts';
import {
  ApiClient,
  checkScope,
  printJson,
  requireReason,
  type SubUsage,
  subArgs,
  withJsonErrors,
} from '../client.ts';
import { CliError, type Command, type CommandContext, REMOTE_HELP } from '../command.ts';
import { dollars, keyValues, shortTime, table, until } from '../table.ts';

const SUBS = {
  ls: { command: 'budgets ls', usage: 'budgets ls [--kind KIND]', args: [], options: ['kind'] },
  show: { command: 'budgets show', usage: 'budgets show <id|scope>', args: ['<id|scope>'] },
  'set-ceiling': {
    command: 'budgets set-ceiling',
    usage: 'budgets set-ceiling <scope> <amount> --reason TEXT',
    args: ['<scope>', '<amount>'],
    options: ['reason'],
  },
  freeze: {
    command: 'budgets freeze',
    usage: 'budgets freeze <scope> --reason TEXT',
    args: ['<scope>'],
    options: ['reason'],
  },
  unfreeze: {
    command: 'budgets unfreeze',
    usage: 'budgets unfreeze <scope> --reason TEXT',
    args: ['<scope>'],
    options: ['reason'],
  },
} satisfies Record<string, SubUsage>;

export const budgetsCommand: Command = {
  name: 'budgets',
  summary: 'list budgets, change ceilings, freeze',
  remote: true,
  help: `Usage:
  chokepoint budgets ls [--kind KIND]                              list budgets (the default)
  chokepoint budgets show <id|scope>                               one budget and its audit trail
  chokepoint budgets set-ceiling <scope> <amount> --reason TEXT    change a ceiling
  chokepoint budgets freeze <scope> --reason TEXT                  refuse every call it covers
  chokepoint budgets unfreeze <scope> --reason TEXT                lift a freeze

A scope is global, team:<key>, env:<key>, seat:<key>, workflow:<id> or run:<id>. A budget exists
for every scope that has been seen, with the configured default ceiling; \`show\`, \`set-ceiling\`
and \`freeze\` create it if needed. Changes are audited with the operator and the reason.

Options:
  --kind KIND    ls: only one kind (${SCOPE_KINDS.join(', ')})
  --reason TEXT  why: required for set-ceiling, freeze and unfreeze (goes to the audit log)
${REMOTE_HELP}

Examples:
  chokepoint budgets ls --kind team
  chokepoint budgets show team:payments
  chokepoint budgets set-ceiling team:payments 200.00 --reason "launch week, approved by finance"
  chokepoint budgets freeze team:payments --reason "runaway agent, investigating"`,
  options: {
    kind: { type: 'string' },
    reason: { type: 'string' },
  },
  async run(ctx) {
    const [sub = 'ls', ...rest] = ctx.positionals;
    switch (sub) {
      case 'ls':
      case 'list':
        return list(ctx, rest);
      case 'show':
        return show(ctx, rest);
      case 'set-ceiling':
        return setCeiling(ctx, rest);
      case 'freeze':
      case 'unfreeze':
        return freeze(ctx, rest, sub === 'freeze');
      default:
        throw new CliError(
          `unknown subcommand ${JSON.stringify(sub)}: expected ls, show, set-ceiling, freeze or unfreeze\n` +
            'run `chokepoint budgets --help` for usage',
        );
    }
  },
};

async function list({ values, out }: CommandContext, args: string[]) {
  subArgs(SUBS.ls, values, args);
  const kind = values.kind as string | undefined;
  if (kind !== undefined && !SCOPE_KINDS.includes(kind as ScopeKind)) {
    throw new CliError(`--kind: expected one of ${SCOPE_KINDS.join(', ')}, got ${JSON.stringify(kind)}`);
  }
  const { client, json } = ApiClient.from(values);
  return withJsonErrors(json, out, async () => {
    const res = await client.get<BudgetsResponse>(`/api/budgets${kind ? `?kind=${kind}` : ''}`);
    if (json) return printJson(out, res);
    if (res.budgets.length === 0) {
      out(
        kind
          ? `no ${kind} budgets yet (a budget is created the first time its scope makes a call)`
          : 'no budgets yet (a budget is created the first time its scope makes a call)',
      );
    } else {
      for (const line of budgetTable(res.budgets)) out(line);
    }
    const defaults = Object.entries(res.defaults)
      .filter(([k]) => !kind || k === kind)
      .map(([k, d]) => `${k} ${dollars(d.ceiling_usd)}/${d.window}`);
    if (defaults.length) out(`\nnew budgets start at: ${defaults.join(', ')}`);
    return 0;
  });
}

export function budgetTable(budgets: BudgetView[], now = Date.now()): string[] {
  return table(
    [
      'SCOPE',
      'STATE',
      'WINDOW',
      { header: 'SPENT', align: 'right' },
      { header: 'RESERVED', align: 'right' },
      { header: 'CEILING', align: 'right' },
      { header: 'USED', align: 'right' },
      'RESETS',
      'ID',
    ],
    budgets.map((b) => [
      b.scope,
      b.state,
      b.window,
      dollars(b.spent_usd),
      dollars(b.reserved_usd),
      dollars(b.ceiling_usd),
      used(b),
      b.resets_at ? until(b.resets_at, now) : 'never',
      b.id,
    ]),
  );
}

function used(b: BudgetView): string {
  if (b.ceiling_micros <= 0) return b.spent_micros > 0 ? '100%' : '-';
  const pct = (b.spent_micros / b.ceiling_micros) * 100;
  return `${pct >= 10 || pct === 0 ? Math.floor(pct) : pct.toFixed(1)}%`;
}

async function show({ values, out }: CommandContext, args: string[]) {
  const [ref] = subArgs(SUBS.show, values, args) as [string];
  if (!ref.startsWith('bgt_')) checkScope(ref);
  const { client, json } = ApiClient.from(values);
  return withJsonErrors(json, out, async () => {
    const res = await client.get<BudgetResponse>(`/api/budgets/${encodeURIComponent(ref)}`);
    if (json) return printJson(out, res);
    const b = res.budget;
    for (const line of keyValues([
      ['budget', `${b.scope}  (${b.id})`],
      ['state', b.state],
      ['spent', `${dollars(b.spent_usd)} of ${dollars(b.ceiling_usd)} (${used(b)})`],
      ['reserved', `${dollars(b.reserved_usd)}  (in-flight calls, worst case)`],
      ['window', b.window],
      ['resets', b.resets_at ? `${shortTime(b.resets_at)}  (${until(b.resets_at)})` : 'never'],
      ['owner', b.owner],
      ['updated', shortTime(b.updated_at)],
    ]))
      out(line);
    out('');
    if (res.audit.length === 0) {
      out('audit: no changes yet');
      return 0;
    }
    out('audit (newest first):');
    for (const line of table(
      ['AT', 'ACTOR', 'ACTION', 'CHANGE', 'REASON'],
      res.audit.map((a) => [shortTime(a.at), a.actor, a.action, describeChange(a), a.reason]),
    ))
      out(`  ${line}`);
    return 0;
  });
}

/** `before → after` for the audit actions on a budget's scope, readable by people. */
export function describeChange(a: Pick<AuditView, 'action' | 'before' | 'after'>): string {
  const before = a.before as Record<string, unknown> | null | undefined;
  const after = a.after as Record<string, unknown> | null | undefined;
  const money = (v: unknown) => (typeof v === 'number' ? `$${formatUsd(v)}` : '?');
  switch (a.action) {
    case 'budget.ceiling':
      return `${money(before?.ceiling)} → ${money(after?.ceiling)}`;
    case 'budget.freeze':
    case 'budget.unfreeze':
      return `${before?.frozen ? 'frozen' : 'active'} → ${after?.frozen ? 'frozen' : 'active'}`;
    case 'kill.set':
      return before ? 'killed → killed' : 'live → killed';
    case 'kill.lift':
      return 'killed → live';
    default: {
      const j = (v: unknown) => (v === undefined ? '-' : JSON.stringify(v));
      const s = `${j(a.before)} → ${j(a.after)}`;
      return s.length > 60 ? `${s.slice(0, 57)}...` : s;
    }
  }
}

async function setCeiling({ values, out }: CommandContext, args: string[]) {
  const [scope, amount] = subArgs(SUBS['set-ceiling'], values, args) as [string, string];
  checkScope(scope);
  const micros = tryParseUsd(amount);
  if (micros === undefined) {
    throw new CliError(`expected a dollar amount like "50.00", got ${JSON.stringify(amount)}`);
  }
  const reason = requireReason(values, 'change a ceiling');
  const { client, json } = ApiClient.from(values);
  return withJsonErrors(json, out, async () => {
    const res = await client.post<BudgetChangedResponse>(
      `/api/budgets/${encodeURIComponent(scope)}/ceiling`,
      { amount: formatUsd(micros), reason },
    );
    if (json) return printJson(out, res);
    const b = res.budget;
    out(
      `${b.scope}: ceiling is now ${dollars(b.ceiling_usd)} per ${b.window} ` +
        `(spent ${dollars(b.spent_usd)}, ${b.state}); logged with your reason`,
    );
    return 0;
  });
}

async function freeze({ values, out }: CommandContext, args: string[], frozen: boolean) {
  const [scope] = subArgs(frozen ? SUBS.freeze : SUBS.unfreeze, values, args) as [string];
  checkScope(scope);
  const reason = requireReason(values, frozen ? 'freeze a budget' : 'unfreeze a budget');
  const { client, json } = ApiClient.from(values);
  return withJsonErrors(json, out, async () => {
    const res = await client.post<BudgetChangedResponse>(
      `/api/budgets/${encodeURIComponent(scope)}/${frozen ? 'freeze' : 'unfreeze'}`,
      { reason },
    );
    if (json) return printJson(out, res);
    const b = res.budget;
    out(
      frozen
        ? `${b.scope}: frozen; every call it covers is refused until \`chokepoint budgets unfreeze ${b.scope}\``
        : `${b.scope}: unfrozen (now ${b.state}; spent ${dollars(b.spent_usd)} of ${dollars(b.ceiling_usd)})`,
    );
    return 0;
  });
}

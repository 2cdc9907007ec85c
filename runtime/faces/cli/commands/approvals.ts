import { parseDuration } from '../../../config/schema.ts';
import { isScopeKey } from '../../../identity.ts';
import { formatUsd, tryParseUsd } from '../../../money.ts';
import { APPROVAL_STATES, type ApprovalState } from '../../../store/approvals.ts';
import type {
  ApprovalResponse,
  ApprovalsResponse,
  ApprovalView,
  DecisionResponse,
} from '../../views/approvals.ts';
import { ApiClient, printJson, requireReason, type SubUsage, subArgs, withJsonErrors } from '../client.ts';
import { CliError, type Command, type CommandContext, REMOTE_HELP } from '../command.ts';
import { dollars, keyValues, shortTime, table, until } from '../table.ts';
import { duration } from './runs.ts';

/** Why items stop, as the API names them (`ls --reason`). */
export const APPROVAL_REASONS = [
  'time_box',
  'spend_box',
  'step_cap',
  'budget_exhausted',
  'approval_required',
  'session_time_box',
] as const;

const DECISIONS = ['approve', 'deny', 'kill', 'extend'] as const;
type DecisionVerb = (typeof DECISIONS)[number];

const PAST: Record<DecisionVerb, string> = {
  approve: 'approved',
  deny: 'denied',
  kill: 'killed',
  extend: 'extended',
};

const SUBS = {
  ls: {
    command: 'approvals ls',
    usage: 'approvals ls [--workflow W] [--team T] [--reason R] [--state S|all] [--limit N] [--cursor C]',
    args: [],
    options: ['workflow', 'team', 'reason', 'state', 'limit', 'cursor'],
  },
  show: { command: 'approvals show', usage: 'approvals show <id>', args: ['<id>'] },
  approve: {
    command: 'approvals approve',
    usage: 'approvals approve <id> --reason TEXT',
    args: ['<id>'],
    options: ['reason'],
  },
  deny: {
    command: 'approvals deny',
    usage: 'approvals deny <id> --reason TEXT',
    args: ['<id>'],
    options: ['reason'],
  },
  kill: {
    command: 'approvals kill',
    usage: 'approvals kill <id> --reason TEXT',
    args: ['<id>'],
    options: ['reason'],
  },
  extend: {
    command: 'approvals extend',
    usage: "approvals extend <id> --reason TEXT [--spend '+$1'] [--time +10m]",
    args: ['<id>'],
    options: ['reason', 'spend', 'time'],
  },
} satisfies Record<string, SubUsage>;

export const approvalsCommand: Command = {
  name: 'approvals',
  summary: 'list and decide approvals (suspended runs and sessions waiting for a human)',
  remote: true,
  help: `Usage:
  chokepoint approvals ls [--workflow W] [--team T] [--reason R] [--state S|all] [--limit N] [--cursor C]
                                                  the inbox: pending items, newest first (the default)
  chokepoint approvals show <id>                  one item: why it stopped, spend by model, steps,
                                                  last messages, and the commands that decide it
  chokepoint approvals approve <id> --reason TEXT go on: a time box restarts its clock, a gated tool
                                                  call runs, a step cap grants its steps again
  chokepoint approvals deny <id> --reason TEXT    a gated call: the model is told a human refused it
                                                  and the run goes on; any other item: the run ends denied
  chokepoint approvals kill <id> --reason TEXT    the run is killed
  chokepoint approvals extend <id> --reason TEXT [--spend '+$1'] [--time +10m]
                                                  go on with a wider spend box and/or time box

Every suspension of a run (its spend box, time box or step cap, a tool in its workflow's
\`approvals\`, an exhausted budget) and every session past its session time box opens one item.
Each item is decided once: a second decision is refused (exit 1, naming the first). Decisions
are audited with your operator name and the reason and need the operator role; an item nobody
decides expires (config approvals.timeout) and its run ends expired (or denied).

Options:
  --workflow W      ls: only items of this workflow
  --team T          ls: only items of runs charged to this team
  --reason R        ls: only items that stopped for this reason (${APPROVAL_REASONS.join(', ')})
                    approve, deny, kill, extend: why you decide so (required; goes to the audit log)
  --state S         ls: only items in this state (${APPROVAL_STATES.join(', ')}) or all
                    (default pending)
  --limit N         ls: at most N items (1-1000, default 50)
  --cursor C        ls: the next page (ls prints the cursor when there are more)
  --spend AMOUNT    extend: add this much to the spend box, e.g. '+$1' or 0.50 (quote a $ in the shell)
  --time DURATION   extend: add this much to the time box, e.g. +10m or 30s
${REMOTE_HELP}

Exit codes:
  0  done
  1  the server refused: unknown item, already decided (409), not allowed (viewer token), ...
  2  usage error (missing id or --reason, extend without --spend or --time, a bad amount, ...)

Examples:
  chokepoint approvals ls
  chokepoint approvals ls --state all --workflow refund --limit 20
  chokepoint approvals show run_01JZ8Q3K7V.1
  chokepoint approvals approve run_01JZ8Q3K7V.1 --reason "refund under 150 USD, order damaged"
  chokepoint approvals extend run_01JZ8Q3K7V.1 --spend '+$2' --time +10m --reason "big ticket"
  chokepoint approvals deny run_01JZ8Q3K7V.1 --reason "no refunds on lost parcels" --json`,
  options: {
    workflow: { type: 'string' },
    team: { type: 'string' },
    reason: { type: 'string' },
    state: { type: 'string' },
    limit: { type: 'string' },
    cursor: { type: 'string' },
    spend: { type: 'string' },
    time: { type: 'string' },
  },
  async run(ctx) {
    const [sub = 'ls', ...rest] = ctx.positionals;
    switch (sub) {
      case 'ls':
      case 'list':
        return list(ctx, rest);
      case 'show':
        return show(ctx, rest);
      case 'approve':
      case 'deny':
      case 'kill':
      case 'extend':
        return decide(ctx, sub, rest);
      default:
        if (/^\S+\.\d+$/.test(sub)) {
          throw new CliError(
            `unknown subcommand ${JSON.stringify(sub)}: did you mean \`chokepoint approvals show ${sub}\`?`,
          );
        }
        throw new CliError(
          `unknown subcommand ${JSON.stringify(sub)}: expected ls, show, approve, deny, kill or extend\n` +
            'run `chokepoint approvals --help` for usage',
        );
    }
  },
};

// ---- ls ------------------------------------------------------------------------------------------

async function list({ values, out }: CommandContext, args: string[]) {
  subArgs(SUBS.ls, values, args);
  const state = values.state as string | undefined;
  if (state !== undefined && state !== 'all' && !APPROVAL_STATES.includes(state as ApprovalState)) {
    throw new CliError(
      `--state: expected all or one of ${APPROVAL_STATES.join(', ')}, got ${JSON.stringify(state)}`,
    );
  }
  const reason = values.reason as string | undefined;
  if (reason !== undefined && !(APPROVAL_REASONS as readonly string[]).includes(reason)) {
    throw new CliError(
      `--reason: expected one of ${APPROVAL_REASONS.join(', ')}, got ${JSON.stringify(reason)}`,
    );
  }
  for (const f of ['workflow', 'team'] as const) {
    const v = values[f];
    if (typeof v === 'string' && !isScopeKey(v)) {
      throw new CliError(
        `--${f}: letters, digits, '.', '_', '@' or '-' (at most 128), got ${JSON.stringify(v)}`,
      );
    }
  }
  const limit = values.limit as string | undefined;
  if (limit !== undefined && (!/^\d+$/.test(limit) || Number(limit) < 1 || Number(limit) > 1000)) {
    throw new CliError(`--limit: expected a whole number 1-1000, got ${JSON.stringify(limit)}`);
  }
  const q = new URLSearchParams();
  for (const f of ['state', 'workflow', 'team', 'reason', 'limit', 'cursor'] as const) {
    if (typeof values[f] === 'string') q.set(f, values[f] as string);
  }
  const { client, json } = ApiClient.from(values);
  return withJsonErrors(json, out, async () => {
    const res = await client.get<ApprovalsResponse>(`/api/approvals${q.size ? `?${q}` : ''}`);
    if (json) return printJson(out, res);
    const filtered = [...q.keys()].some((k) => k !== 'limit' && k !== 'cursor');
    if (res.approvals.length === 0) {
      out(filtered ? 'no approvals match' : 'no pending approvals: nothing is waiting for a human');
      return 0;
    }
    for (const line of approvalTable(res.approvals, (state ?? 'pending') !== 'pending')) out(line);
    if (res.next) {
      const again = new URLSearchParams(q);
      again.set('cursor', res.next);
      const flags = [...again].map(([k, v]) => `--${k} ${v}`).join(' ');
      out(`\nmore approvals: chokepoint approvals ls ${flags}`);
    }
    return 0;
  });
}

/** The inbox table; with `states` a STATE column, and who decided instead of the expiry. */
export function approvalTable(items: ApprovalView[], states = false, now = Date.now()): string[] {
  return table(
    [
      'ID',
      ...(states ? ['STATE'] : []),
      'WORKFLOW',
      'STARTED BY',
      'WHY',
      { header: 'SPENT', align: 'right' },
      'WAITING SINCE',
      states ? 'EXPIRES IN / DECIDED' : 'EXPIRES IN',
    ],
    items.map((a) => [
      a.id,
      ...(states ? [a.state] : []),
      workflowOf(a),
      startedBy(a),
      clip(a.summary, 64),
      dollars(a.spent.usd),
      `${shortTime(a.createdAt)} (${ago(a.createdAt, now)})`,
      a.state === 'pending'
        ? until(a.expiresAt, now)
        : a.decision
          ? `${a.decision.action} by ${a.decision.actor}`
          : a.state,
    ]),
  );
}

// ---- show ----------------------------------------------------------------------------------------

async function show({ values, out }: CommandContext, args: string[]) {
  const [id] = subArgs(SUBS.show, values, args) as [string];
  const { client, json } = ApiClient.from(values);
  return withJsonErrors(json, out, async () => {
    const res = await client.get<ApprovalResponse>(`/api/approvals/${encodeURIComponent(id)}`);
    if (json) return printJson(out, res);
    for (const line of approvalDetail(res.approval)) out(line);
    return 0;
  });
}

/** Everything a human needs to decide an item, then the commands that decide it. */
export function approvalDetail(a: ApprovalView, now = Date.now()): string[] {
  const models = Object.entries(a.spendByModel).sort((x, y) => y[1].micros - x[1].micros);
  const lines = keyValues([
    ['approval', a.id],
    ['why', a.summary],
    ['reason', a.reason],
    ['workflow', workflowOf(a)],
    [a.kind === 'session' ? 'session' : 'run', a.run],
    ['started by', `team:${a.startedBy.team} env:${a.startedBy.env} seat:${a.startedBy.seat}`],
    ['spent', dollars(a.spent.usd)],
    ...models.map(([model, m]): [string, string] => [`  ${model}`, dollars(m.usd)]),
    ['elapsed', duration(a.elapsedMs)],
    ['steps', limitOf(a.steps, a.detail.stepCap)],
    ['cache hits', a.cacheHitRate === null ? undefined : `${Math.round(a.cacheHitRate * 1000) / 10}%`],
    ['waiting since', `${shortTime(a.createdAt)} (${ago(a.createdAt, now)})`],
    ['state', stateLine(a, now)],
  ]);
  const gate = a.reason === 'approval_required';
  if (gate && a.detail.tool !== undefined) {
    lines.push(
      '',
      `wants to call ${String(a.detail.tool)} with:`,
      `  ${clip(JSON.stringify(a.detail.input ?? {}), 2000)}`,
    );
  }
  // The request itself: however long the run went on, the human sees what it was asked.
  if (a.firstUserMessage !== null)
    lines.push('', 'asked:', `  ${clip(a.firstUserMessage, 2000).replace(/\n/g, '\n  ')}`);
  if (a.inputJson !== null) lines.push('', 'input:', `  ${a.inputJson}`);
  lines.push('');
  if (a.lastMessages.length === 0) lines.push('last messages: none');
  else {
    lines.push('last messages (oldest first):');
    for (const line of table(
      ['ROLE', 'TEXT'],
      a.lastMessages.map((m) => [m.role, clip(m.text, 160)]),
    ))
      lines.push(`  ${line}`);
  }
  lines.push('');
  if (a.state !== 'pending') {
    lines.push(`nothing to decide: ${a.id} is ${a.state}`);
    return lines;
  }
  lines.push('decide it:');
  for (const [cmd, what] of decisionHints(a)) lines.push(`  ${cmd}`, `      ${what}`);
  return lines;
}

/** The four decisions with what each does to this item. */
export function decisionHints(a: Pick<ApprovalView, 'id' | 'kind' | 'reason'>): [string, string][] {
  const c = (verb: string, extra = '') => `chokepoint approvals ${verb} ${a.id}${extra} --reason "..."`;
  if (a.kind === 'session') {
    return [
      [c('approve'), "the session's clock restarts: its next call goes through"],
      [c('extend', ' --time +30m'), 'the session time box grows by that much'],
      [c('deny'), 'the session stays refused (a new session starts after the idle gap)'],
      [c('kill'), 'the session stays refused'],
    ];
  }
  const approve: Record<string, string> = {
    time_box: 'the run goes on with its time box clock restarted',
    step_cap: 'the run goes on with its step allowance granted again',
    approval_required: 'the tool call runs and the run goes on',
    spend_box: 'the run goes on with the same spend box (it stops again unless the next call fits)',
    budget_exhausted:
      'the run goes on once the budget has room (raise it with `chokepoint budgets set-ceiling` first)',
  };
  const extend =
    a.reason === 'time_box'
      ? ' --time +10m'
      : a.reason === 'spend_box' || a.reason === 'budget_exhausted'
        ? " --spend '+$1'"
        : " --spend '+$1' --time +10m";
  return [
    [c('approve'), approve[a.reason] ?? 'the run goes on from its last step'],
    [
      c('extend', extend),
      a.reason === 'approval_required'
        ? 'the tool call runs, and the run goes on with a wider spend box / time box'
        : 'the run goes on with a wider spend box / time box',
    ],
    [
      c('deny'),
      a.reason === 'approval_required'
        ? 'the model is told a human refused the call, and the run goes on'
        : 'the run ends denied',
    ],
    [c('kill'), 'the run is killed'],
  ];
}

function stateLine(a: ApprovalView, now: number): string {
  if (a.state === 'pending') return `pending (expires ${until(a.expiresAt, now)})`;
  const d = a.decision;
  if (!d) return a.state;
  const added = [
    d.addSpend ? `+${dollars(d.addSpend.usd)} spend` : '',
    d.addTimeMs ? `+${duration(d.addTimeMs)} time` : '',
  ].filter(Boolean);
  return `${a.state} by ${d.actor} at ${shortTime(d.at)}${added.length ? ` (${added.join(', ')})` : ''}: ${d.reason}`;
}

// ---- decisions -------------------------------------------------------------------------------------

async function decide({ values, out }: CommandContext, verb: DecisionVerb, args: string[]) {
  const [id] = subArgs(SUBS[verb], values, args) as [string];
  const reason = requireReason(values, `${verb} it`);
  const body: Record<string, unknown> = { reason };
  if (verb === 'extend') {
    const spend = values.spend as string | undefined;
    const time = values.time as string | undefined;
    if (spend === undefined && time === undefined) {
      throw new CliError(
        "extend needs an amount: --spend '+$1' and/or --time +10m (to go on without one: `approvals approve`)\n" +
          `usage: chokepoint ${SUBS.extend.usage}`,
      );
    }
    if (spend !== undefined) body.spend = `+$${formatUsd(spendFlag(spend))}`;
    if (time !== undefined) body.time = `+${timeFlag(time)}`;
  }
  const { client, json } = ApiClient.from(values);
  return withJsonErrors(json, out, async () => {
    const res = await client.post<DecisionResponse>(`/api/approvals/${encodeURIComponent(id)}/${verb}`, body);
    if (json) return printJson(out, res);
    for (const line of decided(verb, res)) out(line);
    return 0;
  });
}

/** "+$1", "$0.50", "2" → µ$ > 0, or a usage error naming --spend. */
function spendFlag(v: string): number {
  const raw = v.trim().replace(/^\+/, '');
  const micros = tryParseUsd(raw);
  if (micros === undefined || micros <= 0) {
    const hint = /^\+?$/.test(v.trim()) ? " (the shell ate the $: quote it, --spend '+$1')" : '';
    throw new CliError(
      `--spend: expected an amount to add like '+$1' or 0.50, got ${JSON.stringify(v)}${hint}`,
    );
  }
  return micros;
}

/** "+10m", "30s" → the duration text (checked), or a usage error naming --time. */
function timeFlag(v: string): string {
  const raw = v.trim().replace(/^\+/, '');
  const ms = parseDuration(raw);
  if (ms === undefined || ms <= 0) {
    throw new CliError(`--time: expected a duration to add like +10m, 30s or 2h, got ${JSON.stringify(v)}`);
  }
  return raw;
}

/** What a decision did, in a line or two. */
export function decided(verb: DecisionVerb, res: DecisionResponse): string[] {
  const a = res.approval;
  const what = `${PAST[verb]} ${a.id} (${workflowOf(a)}, ${a.reason})`;
  const r = res.run;
  if (a.kind === 'session') {
    const next =
      verb === 'approve' || verb === 'extend'
        ? "the session's next call goes through"
        : 'the session stays refused';
    return [`${what}: ${next}`];
  }
  if (!r) return [what];
  const limits =
    verb === 'extend'
      ? `; spend box now $${formatUsd(r.limits.spend)}, time box ${duration(r.limits.time)}`
      : '';
  return [`${what}: run ${r.id} is ${r.state}${limits}`, `follow it: chokepoint runs show ${r.id}`];
}

// ---- helpers ---------------------------------------------------------------------------------------

function workflowOf(a: Pick<ApprovalView, 'workflow' | 'version'>): string {
  return a.version ? `${a.workflow}@${a.version}` : a.workflow;
}

function startedBy(a: ApprovalView): string {
  return `${a.startedBy.seat} (${a.startedBy.team}/${a.startedBy.env})`;
}

function limitOf(n: number, cap: unknown): string {
  return typeof cap === 'number' ? `${n} of ${cap}` : String(n);
}

function clip(s: string, max: number): string {
  const one = s.replace(/\s+/g, ' ').trim();
  return one.length > max ? `${one.slice(0, max - 3)}...` : one;
}

/** How long ago `t` was, compactly: `12s ago`, `4m ago`, `2h 5m ago`. */
export function ago(t: string | number, now = Date.now()): string {
  const ms = now - new Date(t).getTime();
  if (!Number.isFinite(ms)) return '-';
  if (ms < 1000) return 'just now';
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s ago`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ago`;
  const h = Math.floor(m / 60);
  if (h < 24) return `${h}h ${m % 60}m ago`;
  return `${Math.floor(h / 24)}d ${h % 24}h ago`;
}

import { readFileSync } from 'node:fs';
import { parseDuration } from '../../../config/schema.ts';
import { isScopeKey } from '../../../identity.ts';
import { formatUsd, tryParseUsd } from '../../../money.ts';
import { RUN_STATES, type RunState } from '../../../store/runs.ts';
import type { JournalView, RunDetailResponse, RunResponse, RunsResponse, RunView } from '../../views/runs.ts';
import {
  ApiClient,
  printJson,
  type RemoteSettings,
  remoteSettings,
  requireReason,
  type SubUsage,
  subArgs,
  withJsonErrors,
} from '../client.ts';
import { CliError, type Command, type CommandContext, REMOTE_HELP } from '../command.ts';
import { dollars, keyValues, shortTime, table } from '../table.ts';

/** Exit codes of `chokepoint run --wait` (and documented in its --help). */
export const EXIT = { done: 0, ended: 1, usage: 2, suspended: 4, stillRunning: 5 } as const;

/** Longest wait one request asks the server for; `--wait` loops on these until --timeout. */
const WAIT_CHUNK_S = 60;
const DEFAULT_TIMEOUT = '5m';

const RUN_USAGE: SubUsage = {
  command: 'run',
  usage:
    'run <workflow> [--input JSON | --input-file FILE] [--version V] [--team T] [--env E] [--wait [--timeout 5m]]',
  args: ['<workflow>'],
  options: ['input', 'input-file', 'version', 'team', 'env', 'wait', 'timeout', 'reason'],
};

export const runCommand: Command = {
  name: 'run',
  summary: 'start a workflow run (and wait for it with --wait)',
  remote: true,
  help: `Usage:
  chokepoint run <workflow> [--input JSON | --input-file FILE] [--version V] [--team T] [--env E]
                 [--wait [--timeout 5m]] [--reason TEXT]

Starts a run of a workflow the server has loaded (the latest version unless --version). The run is
charged to --team and --env (default: the server's workflows.runAs), with your operator name as
the seat, and runs inside its workflow's spend box, time box and step cap. Without --wait it
prints the run id and returns at once; follow the run with \`chokepoint runs show <id>\`.
Needs an operator token with the operator role.

Options:
  --input JSON        the run input, a JSON object (default {})
  --input-file FILE   read the input from a JSON file instead ('-' reads stdin)
  --version V         start this version of the workflow instead of the latest
  --team T            team the run is charged to
  --env E             env the run is charged to
  --wait              wait until the run stops; print its state, reason, steps, spend and output
  --timeout DURATION  with --wait: stop waiting after this long, e.g. 30s, 10m (default ${DEFAULT_TIMEOUT});
                      the run itself goes on
  --reason TEXT       why (optional; goes to the audit log with the start)
${REMOTE_HELP}

Exit codes:
  0  started (without --wait), or the run is done
  1  the run ended failed, killed, denied or expired; or the server refused the request
  2  usage error (unknown flag, invalid JSON in --input, ...)
  4  the run is suspended (spend box, time box, step cap, approval or budget): it says how to
     resume it with \`chokepoint runs resume\`
  5  --wait: the run was still running when --timeout passed

Examples:
  chokepoint run triage --input '{"ticket":"Order A17 has not arrived"}'
  chokepoint run triage --input-file ticket.json --team support --env prod --wait --timeout 2m
  echo '{"ticket":"refund please"}' | chokepoint run triage --input-file - --wait --json`,
  options: {
    input: { type: 'string' },
    'input-file': { type: 'string' },
    version: { type: 'string' },
    team: { type: 'string' },
    env: { type: 'string' },
    wait: { type: 'boolean' },
    timeout: { type: 'string' },
    reason: { type: 'string' },
  },
  async run({ values, positionals, out }) {
    const [workflow] = subArgs(RUN_USAGE, values, positionals) as [string];
    const input = readInput(values);
    for (const f of ['team', 'env'] as const) {
      const v = values[f];
      if (typeof v === 'string' && !isScopeKey(v)) {
        throw new CliError(
          `--${f}: letters, digits, '.', '_', '@' or '-' (at most 128), got ${JSON.stringify(v)}`,
        );
      }
    }
    const wait = values.wait === true;
    if (values.timeout !== undefined && !wait) {
      throw new CliError('--timeout needs --wait (without --wait, `run` returns as soon as the run starts)');
    }
    const timeoutMs = wait ? durationFlag('timeout', (values.timeout as string) ?? DEFAULT_TIMEOUT) : 0;
    const body: Record<string, unknown> = { workflow, input };
    if (typeof values.version === 'string') body.version = values.version;
    if (typeof values.team === 'string') body.team = values.team;
    if (typeof values.env === 'string') body.env = values.env;
    if (typeof values.reason === 'string' && values.reason.trim()) body.reason = values.reason.trim();

    const s = remoteSettings(values);
    const deadline = Date.now() + timeoutMs;
    // Seconds (to the ms) the next request may wait: what is left of --timeout, at most a minute.
    const chunk = () => Math.max(0, Math.min(WAIT_CHUNK_S * 1000, deadline - Date.now())) / 1000;
    return withJsonErrors(s.json, out, async () => {
      if (wait) body.wait = chunk();
      let run = (await client(s, wait).post<RunResponse>('/api/runs', body)).run;
      if (!wait) {
        if (s.json) return printJson(out, { run });
        out(`started ${run.id} (${run.workflow}@${run.version}) as ${who(run)}: ${run.state}`);
        out(`follow it: chokepoint runs show ${run.id}`);
        return EXIT.done;
      }
      if (!s.json) out(`started ${run.id} (${run.workflow}@${run.version}) as ${who(run)}; waiting...`);
      while (run.state === 'running' && chunk() >= 0.05) {
        const t0 = Date.now();
        run = (
          await client(s, true).get<RunDetailResponse>(
            `/api/runs/${encodeURIComponent(run.id)}?wait=${chunk()}`,
          )
        ).run;
        // A server that cannot wait answers at once: do not spin on it.
        if (run.state === 'running' && Date.now() - t0 < 500) await sleep(1000);
      }
      if (s.json) printJson(out, { run });
      else for (const line of outcome(run)) out(line);
      return exitFor(run);
    });
  },
};

function client(s: RemoteSettings, waiting: boolean): ApiClient {
  return new ApiClient(s.url, s.token, (waiting ? WAIT_CHUNK_S + 30 : 30) * 1000);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

type Values = CommandContext['values'];

/** --input or --input-file, parsed: a JSON object, or a usage error naming the flag. */
function readInput(values: Values): Record<string, unknown> {
  const inline = values.input as string | undefined;
  const file = values['input-file'] as string | undefined;
  if (inline !== undefined && file !== undefined) {
    throw new CliError('give --input or --input-file, not both');
  }
  if (inline === undefined && file === undefined) return {};
  let text: string;
  let flag: string;
  if (file !== undefined) {
    flag = `--input-file ${file === '-' ? '(stdin)' : file}`;
    try {
      text = readFileSync(file === '-' ? 0 : file, 'utf8');
    } catch (err) {
      throw new CliError(`--input-file: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? err})`);
    }
  } else {
    flag = '--input';
    text = inline!;
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new CliError(
      `${flag}: not valid JSON (${(err as Error).message}); quote it in the shell: --input '{"ticket":"..."}'`,
    );
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new CliError(`${flag}: expected a JSON object like {"ticket":"..."}, got ${JSON.stringify(value)}`);
  }
  return value as Record<string, unknown>;
}

function durationFlag(flag: string, v: string): number {
  const ms = parseDuration(v);
  if (ms === undefined || ms <= 0) {
    throw new CliError(`--${flag}: expected a duration like 30s, 10m or 2h, got ${JSON.stringify(v)}`);
  }
  return ms;
}

export function exitFor(run: Pick<RunView, 'state'>): number {
  switch (run.state) {
    case 'done':
      return EXIT.done;
    case 'suspended':
      return EXIT.suspended;
    case 'running':
      return EXIT.stillRunning;
    default:
      return EXIT.ended;
  }
}

function who(r: RunView): string {
  return `team:${r.identity.team} env:${r.identity.env} seat:${r.identity.seat}`;
}

/** `90000` → `1m 30s`, `1500` → `1.5s`. */
export function duration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '-';
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${Number((ms / 1000).toFixed(1))}s`;
  const s = Math.round(ms / 1000);
  const [h, m, sec] = [Math.floor(s / 3600), Math.floor((s % 3600) / 60), s % 60];
  return [h ? `${h}h` : '', m ? `${m}m` : '', sec ? `${sec}s` : ''].filter(Boolean).join(' ') || '0s';
}

function elapsed(r: RunView): number | undefined {
  if (!r.startedAt) return undefined;
  const end = r.endedAt ?? r.updatedAt;
  return end ? new Date(end).getTime() - new Date(r.startedAt).getTime() : undefined;
}

const money = (micros: unknown) => (typeof micros === 'number' ? `$${formatUsd(micros)}` : '?');

function json(v: unknown, max = 2000): string {
  const s = typeof v === 'string' ? v : JSON.stringify(v);
  return s.length > max ? `${s.slice(0, max - 3)}...` : s;
}

/** What `run --wait` prints at the end: the state and the numbers, then what to do next. */
export function outcome(r: RunView): string[] {
  const lines = [
    `${r.id}  ${r.state}${r.reason ? ` (${r.reason})` : ''}`,
    ...keyValues([
      ['steps', `${r.steps} of ${r.limits.steps}`],
      ['spend', `${dollars(r.spent_usd)} of ${dollars(r.limits.spend_usd)}`],
      ['time', duration(elapsed(r))],
      ['output', r.output === undefined ? undefined : json(r.output)],
      ['error', r.error],
    ]).map((l) => `  ${l}`),
  ];
  const next =
    r.state === 'running'
      ? `still running; see it with \`chokepoint runs show ${r.id}\`, stop it with \`chokepoint runs kill ${r.id} --reason "..."\``
      : nextStep(r);
  if (next) lines.push('', next);
  return lines;
}

/** For a suspended run: what stopped it and the command that moves it on. */
export function nextStep(r: RunView): string | undefined {
  const d = r.detail ?? {};
  const resume = `chokepoint runs resume ${r.id} --reason "..."`;
  if (r.state !== 'suspended') return undefined;
  switch (r.reason) {
    case 'step_cap':
      return `suspended at its step cap (${d.steps ?? r.steps} of ${d.stepCap ?? r.limits.steps}); resuming grants the workflow's step allowance again:\n  ${resume}`;
    case 'spend_box':
      return `suspended at its spend box (spent ${money(d.spent)} of ${money(d.spendBox ?? r.limits.spend_micros)}); resume with a wider box:\n  ${resume.replace(' --reason', ' --spend $X --reason')}`;
    case 'time_box':
      return `suspended at its time box (${duration(d.elapsedMs as number)} of ${duration(r.limits.time_ms)}); resume restarting the clock (or with --time):\n  ${resume.replace(' --reason', ' --restart-clock --reason')}`;
    case 'approval_required':
      return `waiting for approval: it wants to call ${String(d.tool)} with ${json(d.input, 200)}; decide with:\n  ${resume.replace(' --reason', ' --approve --reason')}\n  ${resume.replace(' --reason', ' --deny --reason')}`;
    case 'budget_exhausted':
      return `suspended: a budget it is charged to is exhausted (${String(d.budget ?? '?')}); raise it with \`chokepoint budgets set-ceiling\`, then:\n  ${resume}`;
    default:
      return `suspended (${r.reason ?? 'unknown reason'}); resume with:\n  ${resume}`;
  }
}

// ---- chokepoint runs ---------------------------------------------------------------------------

const SUBS = {
  ls: {
    command: 'runs ls',
    usage: 'runs ls [--workflow W] [--state S] [--team T] [--limit N] [--cursor C]',
    args: [],
    options: ['workflow', 'state', 'team', 'limit', 'cursor'],
  },
  show: { command: 'runs show', usage: 'runs show <id>', args: ['<id>'] },
  kill: {
    command: 'runs kill',
    usage: 'runs kill <id> --reason TEXT',
    args: ['<id>'],
    options: ['reason'],
  },
  resume: {
    command: 'runs resume',
    usage: 'runs resume <id> --reason TEXT [--spend $X] [--time 10m] [--approve|--deny] [--restart-clock]',
    args: ['<id>'],
    options: ['reason', 'spend', 'time', 'approve', 'deny', 'restart-clock'],
  },
} satisfies Record<string, SubUsage>;

export const runsCommand: Command = {
  name: 'runs',
  summary: 'list, show, kill and resume workflow runs',
  remote: true,
  help: `Usage:
  chokepoint runs ls [--workflow W] [--state S] [--team T] [--limit N]   newest first (the default)
  chokepoint runs show <id>                    one run: state, limits, spend, input, output, journal
  chokepoint runs kill <id> --reason TEXT      stop a run now (its in-flight call is aborted)
  chokepoint runs resume <id> --reason TEXT [--spend $X] [--time 10m] [--approve|--deny] [--restart-clock]
                                               resume a suspended run from its last step

A run stops on its own at its workflow's limits: it is suspended (not failed) at its spend box,
time box or step cap, at a tool call that needs approval, or when a budget it is charged to is
exhausted; \`runs show\` says which and how to resume it. Kill and resume are audited with the
operator and the reason, and need the operator role.

Options:
  --workflow W     ls: only runs of this workflow
  --state S        ls: only runs in this state (${RUN_STATES.join(', ')})
  --team T         ls: only runs charged to this team
  --limit N        ls: at most N runs (1-1000, default 50)
  --cursor C       ls: the next page (ls prints the cursor when there are more)
  --reason TEXT    kill, resume: why (required; goes to the audit log)
  --spend AMOUNT   resume: the new spend box of the run, in dollars (absolute, e.g. 2.50)
  --time DURATION  resume: the new time box (absolute, counted from the start or the last
                   --restart-clock), e.g. 30m
  --restart-clock  resume: count the time box from now
  --approve        resume: a run waiting for approval makes the tool call
  --deny           resume: the model is told a human refused the tool call
${REMOTE_HELP}

Examples:
  chokepoint runs ls --state suspended
  chokepoint runs show run_01JZ8Q3K7V
  chokepoint runs kill run_01JZ8Q3K7V --reason "looping on lookup_order"
  chokepoint runs resume run_01JZ8Q3K7V --spend 2.00 --reason "big ticket, approved by lead"
  chokepoint runs resume run_01JZ8Q3K7V --approve --reason "refund under 50 USD"`,
  options: {
    workflow: { type: 'string' },
    state: { type: 'string' },
    team: { type: 'string' },
    limit: { type: 'string' },
    cursor: { type: 'string' },
    reason: { type: 'string' },
    spend: { type: 'string' },
    time: { type: 'string' },
    approve: { type: 'boolean' },
    deny: { type: 'boolean' },
    'restart-clock': { type: 'boolean' },
  },
  async run(ctx) {
    const [sub = 'ls', ...rest] = ctx.positionals;
    switch (sub) {
      case 'ls':
      case 'list':
        return list(ctx, rest);
      case 'show':
        return show(ctx, rest);
      case 'kill':
        return kill(ctx, rest);
      case 'resume':
        return resume(ctx, rest);
      default:
        if (/^run_\w+$/.test(sub)) {
          throw new CliError(
            `unknown subcommand ${JSON.stringify(sub)}: did you mean \`chokepoint runs show ${sub}\`?`,
          );
        }
        throw new CliError(
          `unknown subcommand ${JSON.stringify(sub)}: expected ls, show, kill or resume\n` +
            'run `chokepoint runs --help` for usage (start a run with `chokepoint run <workflow>`)',
        );
    }
  },
};

async function list({ values, out }: CommandContext, args: string[]) {
  subArgs(SUBS.ls, values, args);
  const q = new URLSearchParams();
  const state = values.state as string | undefined;
  if (state !== undefined && !RUN_STATES.includes(state as RunState)) {
    throw new CliError(`--state: expected one of ${RUN_STATES.join(', ')}, got ${JSON.stringify(state)}`);
  }
  const limit = values.limit as string | undefined;
  if (limit !== undefined && !/^\d+$/.test(limit)) {
    throw new CliError(`--limit: expected a whole number 1-1000, got ${JSON.stringify(limit)}`);
  }
  if (limit !== undefined && (Number(limit) < 1 || Number(limit) > 1000)) {
    throw new CliError(`--limit: expected a whole number 1-1000, got ${limit}`);
  }
  for (const f of ['workflow', 'state', 'team', 'limit', 'cursor'] as const) {
    if (typeof values[f] === 'string') q.set(f, values[f] as string);
  }
  const { client, json } = ApiClient.from(values);
  return withJsonErrors(json, out, async () => {
    const res = await client.get<RunsResponse>(`/api/runs${q.size ? `?${q}` : ''}`);
    if (json) return printJson(out, res);
    if (res.runs.length === 0) {
      out(q.size ? 'no runs match' : 'no runs yet: start one with `chokepoint run <workflow> --input {...}`');
      return 0;
    }
    for (const line of runTable(res.runs)) out(line);
    if (res.next) {
      const again = new URLSearchParams(q);
      again.set('cursor', res.next);
      const flags = [...again].map(([k, v]) => `--${k} ${v}`).join(' ');
      out(`\nmore runs: chokepoint runs ls ${flags}`);
    }
    return 0;
  });
}

export function runTable(runs: RunView[]): string[] {
  return table(
    [
      'ID',
      'WORKFLOW',
      'STATE',
      'REASON',
      { header: 'STEPS', align: 'right' },
      { header: 'SPEND', align: 'right' },
      'STARTED',
    ],
    runs.map((r) => [
      r.id,
      `${r.workflow}@${r.version}`,
      r.state,
      r.reason,
      `${r.steps}/${r.limits.steps}`,
      dollars(r.spent_usd),
      shortTime(r.startedAt),
    ]),
  );
}

async function show({ values, out }: CommandContext, args: string[]) {
  const [id] = subArgs(SUBS.show, values, args) as [string];
  const { client, json } = ApiClient.from(values);
  return withJsonErrors(json, out, async () => {
    const res = await client.get<RunDetailResponse>(`/api/runs/${encodeURIComponent(id)}`);
    if (json) return printJson(out, res);
    for (const line of runDetail(res)) out(line);
    return 0;
  });
}

export function runDetail({ run: r, journal, spend }: RunDetailResponse): string[] {
  const d = r.detail ?? {};
  const by = typeof d.by === 'string' ? ` by ${d.by}${typeof d.why === 'string' ? `: ${d.why}` : ''}` : '';
  const lines = keyValues([
    ['run', r.id],
    ['workflow', `${r.workflow}@${r.version}`],
    ['state', `${r.state}${r.reason ? ` (${r.reason})` : ''}${by}`],
    ['identity', who(r)],
    ['steps', `${r.steps} of ${r.limits.steps}`],
    [
      'spend',
      `${dollars(spend.spent_usd)} of ${dollars(r.limits.spend_usd)}` +
        (spend.reserved_usd !== '0.00' ? ` (+${dollars(spend.reserved_usd)} reserved in flight)` : ''),
    ],
    ['time', `${duration(elapsed(r))} (time box ${duration(r.limits.time_ms)})`],
    ['started', shortTime(r.startedAt)],
    ['ended', r.endedAt ? shortTime(r.endedAt) : undefined],
    ['suspended', r.suspensions ? `${r.suspensions} time${r.suspensions === 1 ? '' : 's'}` : undefined],
    ['input', r.input === undefined ? undefined : json(r.input, 400)],
    ['output', r.output === undefined ? undefined : json(r.output, 400)],
    ['error', r.error],
  ]);
  const next = nextStep(r);
  if (next) lines.push('', next);
  lines.push('');
  if (journal.length === 0) {
    lines.push('journal: no completed calls yet');
    return lines;
  }
  lines.push('journal (completed calls, oldest first):');
  for (const line of table(
    [{ header: '#', align: 'right' }, 'AT', 'KIND', 'NAME', 'LEDGER', 'RESULT'],
    journal.map((e, i) => [i + 1, clock(e.at), e.kind, e.name, e.ledgerId, resultText(e)]),
  ))
    lines.push(`  ${line}`);
  return lines;
}

/** `2025-06-01T14:03:05.123Z` → `14:03:05.123`. */
function clock(at: string | null): string {
  return at ? at.slice(11, 23) : '-';
}

/** One line for a journaled call: the model's text and tool calls, or the tool's output. */
export function resultText(e: Pick<JournalView, 'kind' | 'result'>, max = 80): string {
  const r = (e.result ?? {}) as Record<string, unknown>;
  let s: string;
  if (e.kind === 'model') {
    const uses = Array.isArray(r.toolUses)
      ? (r.toolUses as { name?: string; input?: unknown }[]).map(
          (u) => `→ ${u.name}(${JSON.stringify(u.input)})`,
        )
      : [];
    s = [typeof r.text === 'string' ? r.text : '', ...uses].filter(Boolean).join(' ');
  } else {
    s = `${r.isError ? 'error: ' : ''}${typeof r.content === 'string' ? r.content : JSON.stringify(r)}`;
  }
  s = s.replace(/\s+/g, ' ').trim();
  return s.length > max ? `${s.slice(0, max - 3)}...` : s;
}

async function kill({ values, out }: CommandContext, args: string[]) {
  const [id] = subArgs(SUBS.kill, values, args) as [string];
  const reason = requireReason(values, 'kill a run');
  const { client, json } = ApiClient.from(values);
  return withJsonErrors(json, out, async () => {
    const res = await client.post<RunResponse>(`/api/runs/${encodeURIComponent(id)}/kill`, { reason });
    if (json) return printJson(out, res);
    const r = res.run;
    if (r.state === 'running') {
      out(
        `${r.id} is running on another worker: a kill switch is set on run:${r.id}; ` +
          'it stops at its next call (within a second or so)',
      );
    } else {
      out(
        `killed ${r.id} (${r.workflow}@${r.version}) after ${r.steps} steps, spent ${dollars(r.spent_usd)}`,
      );
    }
    return 0;
  });
}

async function resume({ values, out }: CommandContext, args: string[]) {
  const [id] = subArgs(SUBS.resume, values, args) as [string];
  const reason = requireReason(values, 'resume a run');
  const body: Record<string, unknown> = { reason };
  if (values.approve && values.deny) throw new CliError('give --approve or --deny, not both');
  if (values.approve) body.gate = 'approve';
  if (values.deny) body.gate = 'deny';
  if (typeof values.spend === 'string') {
    const micros = tryParseUsd(values.spend);
    if (micros === undefined || micros <= 0) {
      throw new CliError(`--spend: expected a dollar amount like 2.50, got ${JSON.stringify(values.spend)}`);
    }
    body.spend = formatUsd(micros);
  }
  if (typeof values.time === 'string') {
    durationFlag('time', values.time);
    body.time = values.time;
  }
  if (values['restart-clock']) body.restartClock = true;
  const { client, json } = ApiClient.from(values);
  return withJsonErrors(json, out, async () => {
    const res = await client.post<RunResponse>(`/api/runs/${encodeURIComponent(id)}/resume`, body);
    if (json) return printJson(out, res);
    const r = res.run;
    out(
      `resumed ${r.id} (${r.workflow}@${r.version}): ${r.state}; limits now ${dollars(r.limits.spend_usd)}, ` +
        `${duration(r.limits.time_ms)}, ${r.limits.steps} steps (used ${r.steps}, spent ${dollars(r.spent_usd)})`,
    );
    out(`follow it: chokepoint runs show ${r.id}`);
    return 0;
  });
}

import { parseDuration } from '../../../config/schema.ts';
import { isScopeKey } from '../../../identity.ts';
import type { KeyCreatedResponse, KeyRevokedResponse, KeysResponse, KeyView } from '../../views/keys.ts';
import { ApiClient, printJson, type SubUsage, subArgs, withJsonErrors } from '../client.ts';
import { CliError, type Command, type CommandContext, REMOTE_HELP } from '../command.ts';
import { keyValues, shortTime, table } from '../table.ts';

const SUBS = {
  create: {
    command: 'keys create',
    usage:
      'keys create --team T --env E --seat S [--workflow W] [--label L] [--drift-policy refuse] [--max-tokens fit|refuse] [--session-time-box 30m [--session-gap 15m]]',
    args: [],
    options: [
      'team',
      'env',
      'seat',
      'workflow',
      'label',
      'drift-policy',
      'max-tokens',
      'session-time-box',
      'session-gap',
      'reason',
    ],
  },
  ls: { command: 'keys ls', usage: 'keys ls', args: [] },
  revoke: {
    command: 'keys revoke',
    usage: 'keys revoke <id> [--reason TEXT]',
    args: ['<id>'],
    options: ['reason'],
  },
} satisfies Record<string, SubUsage>;

export const keysCommand: Command = {
  name: 'keys',
  summary: 'create, list and revoke API keys',
  remote: true,
  help: `Usage:
  chokepoint keys create --team T --env E --seat S [--workflow W] [--label L] [--drift-policy refuse]
                         [--max-tokens fit|refuse] [--session-time-box 30m [--session-gap 15m]]
  chokepoint keys ls                          list keys (the default; never shows the secrets)
  chokepoint keys revoke <id> [--reason TEXT] refused from the next call, on every replica

A key is what an app or agent uses as its Anthropic API key when it points ANTHROPIC_BASE_URL at
Chokepoint. It maps every call to a team, env and seat (and optionally a workflow), whose budgets
and kill switches apply. The key itself is printed once, by \`create\`; only its hash is stored.

Options (create):
  --team T               team the calls are charged to (required)
  --env E                environment, e.g. prod or dev (required)
  --seat S               person or service using the key (required)
  --workflow W           also charge the workflow's budget
  --label L              a note to recognise the key by
  --drift-policy POLICY  report (default) or refuse: a changed prompt prefix is a 409 for this key
  --max-tokens POLICY    fit or refuse, when a call's worst case does not fit its budget: fit lowers
                         max_tokens to what the budget can still pay for (header
                         x-chokepoint-max-tokens says so), refuse answers 429. Default: the routing
                         rule's, else gateway.maxTokens in the config (fit)
  --session-time-box D   a session of this key may run this long (e.g. 30m); past it, calls get
                         429 time_box_exceeded and an approval waits in the inbox (approve: the
                         session goes on). A session is x-chokepoint-session, or else runs until
                         a pause longer than --session-gap (default 30m)
  --session-gap D        the pause that ends a session without x-chokepoint-session
  --reason TEXT          why (create, revoke; goes to the audit log)
${REMOTE_HELP}

Examples:
  chokepoint keys create --team payments --env prod --seat alice --label "alice laptop"
  chokepoint keys ls
  chokepoint keys revoke key_01J0ABC --reason "laptop lost"`,
  options: {
    team: { type: 'string' },
    env: { type: 'string' },
    seat: { type: 'string' },
    workflow: { type: 'string' },
    label: { type: 'string' },
    'drift-policy': { type: 'string' },
    'max-tokens': { type: 'string' },
    'session-time-box': { type: 'string' },
    'session-gap': { type: 'string' },
    reason: { type: 'string' },
  },
  async run(ctx) {
    const [sub = 'ls', ...rest] = ctx.positionals;
    switch (sub) {
      case 'create':
        return create(ctx, rest);
      case 'ls':
      case 'list':
        return list(ctx, rest);
      case 'revoke':
        return revoke(ctx, rest);
      default:
        throw new CliError(
          `unknown subcommand ${JSON.stringify(sub)}: expected create, ls or revoke\n` +
            'run `chokepoint keys --help` for usage',
        );
    }
  },
};

async function create({ values, out }: CommandContext, args: string[]) {
  subArgs(SUBS.create, values, args);
  const missing = (['team', 'env', 'seat'] as const).filter((f) => typeof values[f] !== 'string');
  if (missing.length) {
    throw new CliError(
      `${listed(missing.map((f) => `--${f}`))} required: a key maps its calls to a team, env and seat\n` +
        `usage: chokepoint ${SUBS.create.usage}`,
    );
  }
  for (const f of ['team', 'env', 'seat', 'workflow'] as const) {
    const v = values[f];
    if (typeof v === 'string' && !isScopeKey(v)) {
      throw new CliError(
        `--${f}: letters, digits, '.', '_', '@' or '-' (at most 128), got ${JSON.stringify(v)}`,
      );
    }
  }
  const drift = values['drift-policy'];
  if (drift !== undefined && drift !== 'report' && drift !== 'refuse') {
    throw new CliError(`--drift-policy: expected report or refuse, got ${JSON.stringify(drift)}`);
  }
  const maxTokens = values['max-tokens'];
  if (maxTokens !== undefined && maxTokens !== 'fit' && maxTokens !== 'refuse') {
    throw new CliError(`--max-tokens: expected fit or refuse, got ${JSON.stringify(maxTokens)}`);
  }
  const body: Record<string, unknown> = { team: values.team, env: values.env, seat: values.seat };
  if (maxTokens !== undefined) body.maxTokens = maxTokens;
  if (values.workflow !== undefined) body.workflow = values.workflow;
  if (values.label !== undefined) body.label = values.label;
  if (drift !== undefined) body.driftPolicy = drift;
  for (const [flag, field] of [
    ['session-time-box', 'sessionTimeBox'],
    ['session-gap', 'sessionGap'],
  ] as const) {
    const v = values[flag];
    if (typeof v !== 'string') continue;
    const ms = parseDuration(v);
    if (ms === undefined || ms <= 0) {
      throw new CliError(`--${flag}: expected a duration like 30m or 2h, got ${JSON.stringify(v)}`);
    }
    body[field] = v;
  }
  if (values['session-gap'] !== undefined && values['session-time-box'] === undefined) {
    throw new CliError('--session-gap needs --session-time-box (a gap only matters to a session with a box)');
  }
  if (typeof values.reason === 'string' && values.reason.trim()) body.reason = values.reason.trim();

  const { client, json } = ApiClient.from(values);
  return withJsonErrors(json, out, async () => {
    const res = await client.post<KeyCreatedResponse>('/api/keys', body);
    if (json) return printJson(out, res);
    const r = res.record;
    for (const line of keyValues([
      ['key', res.key],
      ['id', r.id],
      ['identity', identity(r)],
      ['label', r.label],
      ['drift', r.driftPolicy ?? 'report'],
      ['max tokens', r.maxTokens ?? 'default'],
      [
        'session box',
        r.sessionTimeBox
          ? `${Math.round(r.sessionTimeBox / 60_000)}m (gap ${Math.round((r.sessionGap ?? 1_800_000) / 60_000)}m)`
          : undefined,
      ],
    ]))
      out(line);
    out('');
    out('This key is shown only once: store it now (Chokepoint keeps only its hash).');
    out(`Use it as the Anthropic API key, with ANTHROPIC_BASE_URL=${client.url}`);
    return 0;
  });
}

function listed(items: string[]): string {
  if (items.length === 1) return `${items[0]} is`;
  return `${items.slice(0, -1).join(', ')} and ${items.at(-1)} are`;
}

function identity(k: Pick<KeyView, 'team' | 'env' | 'seat' | 'workflow'>): string {
  return `team:${k.team} env:${k.env} seat:${k.seat}${k.workflow ? ` workflow:${k.workflow}` : ''}`;
}

async function list({ values, out }: CommandContext, args: string[]) {
  subArgs(SUBS.ls, values, args);
  const { client, json } = ApiClient.from(values);
  return withJsonErrors(json, out, async () => {
    const res = await client.get<KeysResponse>('/api/keys');
    if (json) return printJson(out, res);
    if (res.keys.length === 0) {
      out('no keys yet: create one with `chokepoint keys create --team T --env E --seat S`');
      return 0;
    }
    for (const line of keyTable(res.keys)) out(line);
    return 0;
  });
}

export function keyTable(keys: KeyView[]): string[] {
  const sorted = [...keys].sort((a, b) => String(a.createdAt).localeCompare(String(b.createdAt)));
  return table(
    ['ID', 'TEAM', 'ENV', 'SEAT', 'WORKFLOW', 'LABEL', 'DRIFT', 'CREATED', 'STATUS'],
    sorted.map((k) => [
      k.id,
      k.team,
      k.env,
      k.seat,
      k.workflow,
      k.label,
      k.driftPolicy ?? 'report',
      shortTime(k.createdAt),
      k.revokedAt ? `revoked ${shortTime(k.revokedAt)}` : 'active',
    ]),
  );
}

async function revoke({ values, out }: CommandContext, args: string[]) {
  const [id] = subArgs(SUBS.revoke, values, args) as [string];
  const reason = typeof values.reason === 'string' && values.reason.trim() ? values.reason.trim() : undefined;
  const { client, json } = ApiClient.from(values);
  return withJsonErrors(json, out, async () => {
    const res = await client.post<KeyRevokedResponse>(
      `/api/keys/${encodeURIComponent(id)}/revoke`,
      reason ? { reason } : {},
    );
    if (json) return printJson(out, res);
    out(
      `revoked ${res.key.id} (${identity(res.key)}) at ${shortTime(res.key.revokedAt)}: ` +
        'its next call is refused with 401',
    );
    return 0;
  });
}

import type {
  KillSwitchesResponse,
  KillSwitchLiftedResponse,
  KillSwitchSetResponse,
  KillSwitchView,
} from '../../views/kill-switches.ts';
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
import { shortTime, table } from '../table.ts';

const SCOPES = 'global, team:<key>, env:<key>, seat:<key>, workflow:<id> or run:<id>';

const LIST: SubUsage = { command: 'kill --list', usage: 'kill --list', args: [], options: ['list'] };
const SET: SubUsage = {
  command: 'kill',
  usage: 'kill <scope> --reason TEXT',
  args: ['<scope>'],
  options: ['reason'],
};
const LIFT: SubUsage = {
  command: 'unkill',
  usage: 'unkill <scope> --reason TEXT',
  args: ['<scope>'],
  options: ['reason'],
};

export const killCommand: Command = {
  name: 'kill',
  summary: 'flip a kill switch (or list them with --list)',
  remote: true,
  help: `Usage:
  chokepoint kill <scope> --reason TEXT   refuse every call the scope covers, from the next request
  chokepoint kill --list                  the switches that are set (also: chokepoint kill ls)

<scope> is ${SCOPES}. A killed caller gets HTTP 403 (code "killed") on its next call, on every
replica; runs it covers stop at their next call. Lift it with \`chokepoint unkill\`. Both are
audited with the operator and the reason.

Options:
  --reason TEXT  why (required; goes to the audit log and into the refusal the caller sees)
  --list         list the kill switches that are set
${REMOTE_HELP}

Examples:
  chokepoint kill team:payments --reason "agent loop, about 40 USD a minute"
  chokepoint kill global --reason "provider incident"
  chokepoint kill --list`,
  options: {
    reason: { type: 'string' },
    list: { type: 'boolean' },
  },
  async run(ctx) {
    const { positionals, values } = ctx;
    if (values.list || positionals[0] === 'ls' || positionals[0] === 'list') {
      return listKills(ctx, values.list ? positionals : positionals.slice(1));
    }
    if (positionals.length === 0) {
      throw new CliError(
        `missing <scope> (${SCOPES})\nusage: chokepoint ${SET.usage}  or  chokepoint kill --list`,
      );
    }
    const [scope] = subArgs(SET, values, positionals) as [string];
    checkScope(scope);
    const reason = requireReason(values, 'flip a kill switch');
    const { client, json } = ApiClient.from(values);
    return withJsonErrors(json, ctx.out, async () => {
      const res = await client.post<KillSwitchSetResponse>('/api/kill-switches', { scope, reason });
      if (json) return printJson(ctx.out, res);
      ctx.out(
        `killed ${res.kill_switch.scope}: every call it covers is refused from the next request\n` +
          `lift it with: chokepoint unkill ${res.kill_switch.scope} --reason "..."`,
      );
      return 0;
    });
  },
};

async function listKills({ values, out }: CommandContext, args: string[]) {
  subArgs(LIST, values, args);
  const { client, json } = ApiClient.from(values);
  return withJsonErrors(json, out, async () => {
    const res = await client.get<KillSwitchesResponse>('/api/kill-switches');
    if (json) return printJson(out, res);
    if (res.kill_switches.length === 0) {
      out('no kill switches are set');
      return 0;
    }
    for (const line of killTable(res.kill_switches)) out(line);
    return 0;
  });
}

export function killTable(kills: KillSwitchView[]): string[] {
  return table(
    ['SCOPE', 'SINCE', 'BY', 'REASON'],
    kills.map((k) => [k.scope, shortTime(k.at), k.actor, k.reason]),
  );
}

export const unkillCommand: Command = {
  name: 'unkill',
  summary: 'lift a kill switch',
  remote: true,
  help: `Usage: chokepoint unkill <scope> --reason TEXT

Lifts the kill switch on <scope> (${SCOPES}): its calls are admitted again from the next request,
subject to their budgets. Audited with the operator and the reason. Exits 1 if no switch was set
on that exact scope (see \`chokepoint kill --list\`).

Options:
  --reason TEXT  why (required; goes to the audit log)
${REMOTE_HELP}

Example:
  chokepoint unkill team:payments --reason "loop fixed in v1.4.2"`,
  options: {
    reason: { type: 'string' },
  },
  async run({ values, positionals, out, err }) {
    const [scope] = subArgs(LIFT, values, positionals) as [string];
    checkScope(scope);
    const reason = requireReason(values, 'lift a kill switch');
    const { client, json } = ApiClient.from(values);
    return withJsonErrors(json, out, async () => {
      const res = await client.post<KillSwitchLiftedResponse>(
        `/api/kill-switches/${encodeURIComponent(scope)}/lift`,
        { reason },
      );
      if (json) printJson(out, res);
      if (!res.lifted) {
        err(
          `chokepoint unkill: no kill switch is set on ${scope}; nothing changed (see \`chokepoint kill --list\`)`,
        );
        return 1;
      }
      if (!json) out(`lifted the kill switch on ${scope}: its calls are admitted again (subject to budgets)`);
      return 0;
    });
  },
};

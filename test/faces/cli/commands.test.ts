import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CliError, type Command, parseCommandArgs } from '../../../runtime/faces/cli/command.ts';
import { budgetsCommand } from '../../../runtime/faces/cli/commands/budgets.ts';
import { keysCommand } from '../../../runtime/faces/cli/commands/keys.ts';
import { killCommand, unkillCommand } from '../../../runtime/faces/cli/commands/kill.ts';
import { workerCommand } from '../../../runtime/faces/cli/commands/worker.ts';
import { ADMIN_TOKEN, type Harness, startHarness } from '../../helpers/harness.ts';

const COMMANDS: Record<string, Command> = {
  budgets: budgetsCommand,
  kill: killCommand,
  unkill: unkillCommand,
  keys: keysCommand,
};

/** Runs a command in-process the way main.ts does (remote.test.ts runs the real binary). */
async function run(cmd: Command, argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  try {
    const { values, positionals } = parseCommandArgs(cmd, argv);
    if (values.help) return { code: 0, out: cmd.help, err: '' };
    const code = await cmd.run({
      values,
      positionals,
      out: (l) => out.push(l),
      err: (l) => err.push(l),
    });
    return { code: code ?? 0, out: out.join('\n'), err: err.join('\n') };
  } catch (e) {
    if (!(e instanceof CliError)) throw e;
    return { code: e.exitCode, out: out.join('\n'), err: e.message };
  }
}

// Usage errors are reported before any request: this URL (a closed port) is never contacted.
const NO_SERVER = ['--url', 'http://127.0.0.1:9', '--token', 'unused'];

describe('remote commands: usage errors are caught locally (exit 2)', () => {
  it.each([
    [
      'budgets',
      ['set-ceiling', 'team:a', 'fifty', '--reason', 'r'],
      'expected a dollar amount like "50.00", got "fifty"',
    ],
    ['budgets', ['set-ceiling', 'team:a', '-1'], "Unknown option '-1'"],
    ['budgets', ['set-ceiling', 'team:a', '10'], '--reason is required: say why you change a ceiling'],
    ['budgets', ['freeze', 'team:a', '--reason', '  '], '--reason is required'],
    [
      'budgets',
      ['freeze', 'team:a', '--reason', 'runaway', 'agent'],
      'unexpected argument "agent" (quote a reason',
    ],
    ['budgets', ['show'], 'missing <id|scope>\nusage: chokepoint budgets show <id|scope>'],
    ['budgets', ['show', 'payments'], 'unknown scope "payments"'],
    ['budgets', ['ls', '--kind', 'teams'], '--kind: expected one of global, team, env, seat, workflow, run'],
    ['budgets', ['ls', '--reason', 'x'], '--reason does not apply to `chokepoint budgets ls`'],
    ['budgets', ['frob'], 'unknown subcommand "frob": expected ls, show, set-ceiling, freeze or unfreeze'],
    ['kill', [], 'missing <scope>'],
    ['kill', ['team:a'], '--reason is required'],
    ['kill', ['payments', '--reason', 'r'], 'unknown scope "payments"'],
    ['kill', ['--list', '--reason', 'r'], '--reason does not apply to `chokepoint kill --list`'],
    ['unkill', ['team:a'], '--reason is required'],
    ['keys', ['create', '--team', 'a'], '--env and --seat are required'],
    ['keys', ['create', '--team', 'a b', '--env', 'e', '--seat', 's'], "--team: letters, digits, '.'"],
    [
      'keys',
      ['create', '--team', 'a', '--env', 'e', '--seat', 's', '--drift-policy', 'x'],
      '--drift-policy: expected report or refuse',
    ],
    ['keys', ['revoke'], 'missing <id>'],
    ['keys', ['ls', '--url', 'localhost:8787'], '--url: expected an http(s) URL'],
  ] as [string, string[], string][])('%s %j', async (name, argv, message) => {
    const r = await run(COMMANDS[name]!, [
      ...argv,
      ...(argv.includes('--url') ? ['--token', 't'] : NO_SERVER),
    ]);
    expect(r.code).toBe(2);
    expect(r.err).toContain(message);
    expect(r.out).toBe('');
  });
});

describe('worker: usage errors before anything starts (exit 2)', () => {
  it.each([
    [['--metrics-port', 'nine'], '--metrics-port: expected a port number 0-65535, got "nine"'],
    [['--metrics-port', '70000'], '--metrics-port: expected a port number 0-65535, got "70000"'],
  ])('worker %j', async (argv, message) => {
    const r = await run(workerCommand, argv);
    expect(r.code).toBe(2);
    expect(r.err).toContain(message);
  });
});

describe('remote commands: --help', () => {
  it.each([budgetsCommand, killCommand, unkillCommand, keysCommand])(
    '$name has usage, options, server options and an example',
    (cmd) => {
      expect(cmd.remote).toBe(true);
      expect(cmd.help).toMatch(/^Usage:/);
      expect(cmd.help).toContain(`chokepoint ${cmd.name} `);
      expect(cmd.help).toMatch(/\n {2}--reason TEXT/);
      expect(cmd.help).toContain('--url URL');
      expect(cmd.help).toContain('--token TOKEN');
      expect(cmd.help).toContain('--json');
      expect(cmd.help).toMatch(/\nExamples?:\n {2}chokepoint /);
    },
  );
});

describe('remote commands in-process against a server: the less travelled paths', () => {
  let h: Harness;
  let remote: string[];
  beforeAll(async () => {
    h = await startHarness();
    remote = ['--url', h.url, '--token', ADMIN_TOKEN];
  });
  afterAll(async () => {
    await h?.close();
  });

  it('budgets: empty lists, show by id, unfreeze', async () => {
    const empty = await run(budgetsCommand, ['ls', '--kind', 'workflow', ...remote]);
    expect(empty.out).toContain('no workflow budgets yet');
    expect(empty.out).toContain('new budgets start at: workflow $20.00/day');

    // Reading a budget creates nothing: an operator action does.
    const before = await run(budgetsCommand, ['show', 'team:inproc', '--json', ...remote]);
    expect(JSON.parse(before.out).budget).toMatchObject({ id: null, created: false, ceiling_usd: '50.00' });
    await run(budgetsCommand, ['freeze', 'team:inproc', '--reason', 'r', ...remote]);
    const shown = await run(budgetsCommand, ['show', 'team:inproc', ...remote]);
    const id = /\b(bgt_\w+)/.exec(shown.out)![1]!;
    const byId = await run(budgetsCommand, ['show', id, '--json', ...remote]);
    expect(JSON.parse(byId.out).budget).toMatchObject({ id, scope: 'team:inproc', ceiling_usd: '50.00' });

    const unfrozen = await run(budgetsCommand, ['unfreeze', 'team:inproc', '--reason', 'ok', ...remote]);
    expect(unfrozen.code).toBe(0);
    expect(unfrozen.out).toBe('team:inproc: unfrozen (now active; spent $0.00 of $50.00)');

    const missing = await run(budgetsCommand, ['show', 'bgt_nope', ...remote]);
    expect(missing.code).toBe(1);
    expect(missing.err).toBe('no budget "bgt_nope"');
  });

  it('unkill of a scope with no switch exits 1 and says nothing changed', async () => {
    const none = await run(killCommand, ['ls', ...remote]);
    expect(none.out).toBe('no kill switches are set');
    const r = await run(unkillCommand, ['env:nowhere', '--reason', 'tidy', ...remote]);
    expect(r.code).toBe(1);
    expect(r.err).toContain('no kill switch is set on env:nowhere; nothing changed');
    const json = await run(unkillCommand, ['env:nowhere', '--reason', 'tidy', '--json', ...remote]);
    expect(json.code).toBe(1);
    expect(JSON.parse(json.out)).toEqual({ lifted: false });
  });

  it('keys: ls shows revoked keys as revoked and never the secret', async () => {
    const empty = await run(keysCommand, remote);
    expect(empty.out).toContain('no keys yet');
    const { key, id } = await h.client({ team: 'inproc', workflow: 'triage', driftPolicy: 'refuse' });
    const revoked = await run(keysCommand, ['revoke', id, ...remote]);
    expect(revoked.out).toMatch(
      new RegExp(`^revoked ${id} \\(team:inproc env:prod seat:seat-\\d+ workflow:triage\\)`),
    );
    const ls = await run(keysCommand, ['ls', ...remote]);
    expect(ls.out).not.toContain(key);
    expect(ls.out.split('\n')[1]).toMatch(
      new RegExp(
        `^${id}\\s+inproc\\s+prod\\s+seat-\\d+\\s+triage\\s+-\\s+refuse\\s+\\S+ \\S+\\s+revoked \\d{4}-`,
      ),
    );
    const audit = await h.api<{ entries: { reason: string }[] }>('GET', `/api/audit?target=key:${id}`);
    expect(audit.body.entries[0]!.reason).toBe('key revoked');
  });
});

import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CliError, type Command, parseCommandArgs } from '../../../runtime/faces/cli/command.ts';
import {
  approvalDetail,
  approvalsCommand,
  approvalTable,
} from '../../../runtime/faces/cli/commands/approvals.ts';
import type { ApprovalView } from '../../../runtime/faces/views/approvals.ts';
import { ADMIN_TOKEN, type Harness, startHarness, VIEWER_TOKEN } from '../../helpers/harness.ts';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const BIN = 'bin/chokepoint.js';
const WORKFLOWS = fileURLToPath(new URL('../../fixtures/approval-workflows', import.meta.url));
const TASKS = {
  gated: 'Pay it [[emulator:tool_use pay={"order":"A1","amount_usd":5}]]',
  capped: 'Loop [[emulator:tool_use lookup={"order":"A1"}]]',
  spender: 'Spend [[emulator:tool_use lookup={"order":"A1"}]] [[emulator:output_tokens=900]]',
} as const;

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

const baseEnv = Object.fromEntries(
  Object.entries(process.env).filter(
    (e): e is [string, string] => !e[0].startsWith('CHOKEPOINT_') && e[1] !== undefined,
  ),
);

/** Runs a command in-process the way main.ts does. */
async function inProcess(cmd: Command, argv: string[]): Promise<Result> {
  const out: string[] = [];
  const err: string[] = [];
  try {
    const { values, positionals } = parseCommandArgs(cmd, argv);
    if (values.help) return { code: 0, stdout: cmd.help, stderr: '' };
    const code = await cmd.run({ values, positionals, out: (l) => out.push(l), err: (l) => err.push(l) });
    return { code: code ?? 0, stdout: out.join('\n'), stderr: err.join('\n') };
  } catch (e) {
    if (!(e instanceof CliError)) throw e;
    return { code: e.exitCode, stdout: out.join('\n'), stderr: e.message };
  }
}

// Usage errors are reported before any request: this URL (a closed port) is never contacted.
const NO_SERVER = ['--url', 'http://127.0.0.1:9', '--token', 'unused'];

describe('approvals: usage errors are caught locally (exit 2)', () => {
  it.each([
    [['show'], 'missing <id>\nusage: chokepoint approvals show <id>'],
    [['approve'], 'missing <id>\nusage: chokepoint approvals approve <id> --reason TEXT'],
    [['approve', 'run_x.1'], '--reason is required: say why you approve it'],
    [['deny', 'run_x.1', '--reason', '  '], '--reason is required: say why you deny it'],
    [['kill', 'run_x.1'], '--reason is required: say why you kill it'],
    [['deny', 'run_x.1', '--reason', 'too', 'expensive'], 'unexpected argument "expensive" (quote a reason'],
    [['extend', 'run_x.1', '--reason', 'r'], "extend needs an amount: --spend '+$1' and/or --time +10m"],
    [
      ['extend', 'run_x.1', '--reason', 'r', '--spend', 'lots'],
      "--spend: expected an amount to add like '+$1'",
    ],
    [['extend', 'run_x.1', '--reason', 'r', '--spend', '+'], "the shell ate the $: quote it, --spend '+$1'"],
    [['extend', 'run_x.1', '--reason', 'r', '--spend', '0'], '--spend: expected an amount to add'],
    [['extend', 'run_x.1', '--reason', 'r', '--time', '10 minutes'], '--time: expected a duration to add'],
    [['extend', 'run_x.1', '--reason', 'r', '--time', '+0s'], '--time: expected a duration to add'],
    [
      ['approve', 'run_x.1', '--reason', 'r', '--spend', '1'],
      '--spend does not apply to `chokepoint approvals approve`',
    ],
    [['ls', '--state', 'waiting'], '--state: expected all or one of pending, approved, extended'],
    [['ls', '--reason', 'because'], '--reason: expected one of time_box, spend_box, step_cap'],
    [['ls', '--limit', '0'], '--limit: expected a whole number 1-1000'],
    [['ls', '--team', 'pay ments'], "--team: letters, digits, '.'"],
    [['ls', '--time', '1m'], '--time does not apply to `chokepoint approvals ls`'],
    [['frob'], 'unknown subcommand "frob": expected ls, show, approve, deny, kill or extend'],
    [['run_0abc.1'], 'did you mean `chokepoint approvals show run_0abc.1`?'],
    [['ls', '--colour'], "Unknown option '--colour'"],
  ] as [string[], string][])('approvals %j', async (argv, message) => {
    const r = await inProcess(approvalsCommand, [...argv, ...NO_SERVER]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(message);
    expect(r.stdout).toBe('');
  });

  it('--help: usage, options, server options, exit codes, examples', () => {
    const help = approvalsCommand.help;
    expect(approvalsCommand.remote).toBe(true);
    expect(help).toMatch(/^Usage:/);
    for (const sub of ['ls', 'show <id>', 'approve <id>', 'deny <id>', 'kill <id>', 'extend <id>']) {
      expect(help).toContain(`chokepoint approvals ${sub}`);
    }
    expect(help).toMatch(/\n {2}--reason R/);
    expect(help).toMatch(/\n {2}--spend AMOUNT/);
    expect(help).toMatch(/\n {2}--time DURATION/);
    expect(help).toContain('--url URL');
    expect(help).toContain('--json');
    expect(help).toMatch(/Exit codes:\n {2}0 .*\n {2}1 .*409/);
    expect(help).toMatch(/\nExamples:\n {2}chokepoint approvals /);
  });

  it('formats an item for the inbox table and for show', () => {
    const now = Date.parse('2026-01-01T12:10:00Z');
    const item: ApprovalView = {
      id: 'run_a.1',
      kind: 'run',
      state: 'pending',
      run: 'run_a',
      workflow: 'refund',
      version: '1',
      startedBy: { team: 'payments', env: 'prod', seat: 'ana' },
      reason: 'approval_required',
      summary: 'gate: wants to call issue_refund with {"order_id":"A-1001","amount_usd":120}',
      detail: { tool: 'issue_refund', input: { order_id: 'A-1001', amount_usd: 120 }, stepCap: 8 },
      spent: { usd: '0.0021', micros: 2100 },
      spendByModel: { 'claude-haiku-4-5': { usd: '0.0021', micros: 2100 } },
      elapsedMs: 1500,
      steps: 3,
      cacheHitRate: 0.5,
      lastMessages: [{ role: 'assistant', text: '→ issue_refund({"order_id":"A-1001"})' }],
      inputJson: '{"order_id":"A-1001","reason":"arrived broken"}',
      firstUserMessage: 'Refund request for order A-1001: arrived broken',
      createdAt: '2026-01-01T12:05:00Z',
      expiresAt: '2026-01-02T12:05:00Z',
      decision: null,
    };
    const [header, row] = approvalTable([item], false, now);
    expect(header).toMatch(/^ID\s+WORKFLOW\s+STARTED BY\s+WHY\s+SPENT\s+WAITING SINCE\s+EXPIRES IN$/);
    expect(row).toMatch(
      /^run_a\.1\s+refund@1\s+ana \(payments\/prod\)\s+gate: wants to call issue_refund with \{"order_id":"A-1001","a\.\.\.\s+\$0\.0021\s+2026-01-01 12:05Z \(5m ago\)\s+in 23h 55m$/,
    );
    const shown = approvalDetail(item, now).join('\n');
    expect(shown).toMatch(/^why +gate: wants to call issue_refund/m);
    expect(shown).toMatch(/^ {2}claude-haiku-4-5 +\$0\.0021$/m);
    expect(shown).toMatch(/^steps +3 of 8$/m);
    expect(shown).toContain('asked:\n  Refund request for order A-1001: arrived broken');
    expect(shown).toContain('input:\n  {"order_id":"A-1001","reason":"arrived broken"}');
    expect(shown).toMatch(/^cache hits +50%$/m);
    expect(shown).toContain('chokepoint approvals deny run_a.1 --reason "..."');
    expect(shown).toContain('the model is told a human refused the call');
  });
});

/** The real CLI, as a child process, against an in-process server hosting the fixture workflows.
 * A test runs up to eight CLI processes one after another (~3 s each on a busy two-core machine):
 * two minutes each, not the suite's 30 s. */
describe('approvals against a server', { timeout: 120_000 }, () => {
  let h: Harness;
  let env: Record<string, string>;

  const cli = (args: string[], extraEnv: Record<string, string> = {}): Promise<Result> =>
    new Promise((resolve) => {
      execFile(
        process.execPath,
        [BIN, ...args],
        { cwd: ROOT, env: { ...env, ...extraEnv }, timeout: 25_000 },
        (err, stdout, stderr) => {
          const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
          resolve({ code, stdout, stderr });
        },
      );
    });

  /** Starts a fixture run and returns its first approval item once it is open. */
  async function suspended(workflow: keyof typeof TASKS): Promise<{ runId: string; id: string }> {
    const res = await h.api<{ run: { id: string; state: string } }>('POST', '/api/runs', {
      workflow,
      input: { task: TASKS[workflow] },
      team: 'cli-approvals',
      wait: 20,
    });
    expect(res.body.run.state).toBe('suspended');
    const id = `${res.body.run.id}.1`;
    for (let i = 0; i < 500; i++) {
      if ((await h.api('GET', `/api/approvals/${id}`)).status === 200) return { runId: res.body.run.id, id };
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error(`no approval ${id}`);
  }

  beforeAll(async () => {
    h = await startHarness({
      workflows: WORKFLOWS,
      config: { auth: { operators: [{ name: 'vera', role: 'viewer', token: VIEWER_TOKEN }] } },
    });
    env = { ...baseEnv, CHOKEPOINT_URL: h.url, CHOKEPOINT_TOKEN: ADMIN_TOKEN };
  });
  afterAll(async () => {
    await h?.close();
  });

  it('ls shows a pending gate; show prints the summary, the numbers and the commands; approve resumes it', async () => {
    const empty = await cli(['approvals']);
    expect(empty).toMatchObject({
      code: 0,
      stdout: 'no pending approvals: nothing is waiting for a human\n',
    });

    const { runId, id } = await suspended('gated');
    const [ls, shown] = await Promise.all([cli(['approvals', 'ls']), cli(['approvals', 'show', id])]);
    expect(ls.stderr).toBe('');
    expect(ls.code).toBe(0);
    const [header, ...rows] = ls.stdout.trim().split('\n');
    expect(header).toMatch(/^ID\s+WORKFLOW\s+STARTED BY\s+WHY\s+SPENT\s+WAITING SINCE\s+EXPIRES IN$/);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatch(
      new RegExp(
        `^${id.replace('.', '\\.')}\\s+gated@1\\s+admin \\(cli-approvals/default\\)\\s+gate: wants to call pay with \\{"order":"A1","amount_usd":5\\}\\s+\\$0\\.\\d+\\s+\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\dZ \\((just now|\\ds ago)\\)\\s+in 1d 0h$`,
      ),
    );

    expect(shown.stderr).toBe('');
    expect(shown.code).toBe(0);
    expect(shown.stdout).toMatch(new RegExp(`^approval +${id.replace('.', '\\.')}$`, 'm'));
    expect(shown.stdout).toMatch(/^why +gate: wants to call pay with \{"order":"A1","amount_usd":5\}$/m);
    expect(shown.stdout).toMatch(/^workflow +gated@1$/m);
    expect(shown.stdout).toMatch(new RegExp(`^run +${runId}$`, 'm'));
    expect(shown.stdout).toMatch(/^started by +team:cli-approvals env:default seat:admin$/m);
    expect(shown.stdout).toMatch(/^spent +\$0\.\d+$/m);
    expect(shown.stdout).toMatch(/^ {2}claude-haiku-4-5\S* +\$0\.\d+$/m);
    expect(shown.stdout).toMatch(/^steps +1 of 10$/m);
    expect(shown.stdout).toMatch(/^state +pending \(expires in 1d 0h\)$/m);
    expect(shown.stdout).toContain('last messages (oldest first):');
    expect(shown.stdout).toMatch(/^ {2}assistant +.*→ pay\(\{"order":"A1","amount_usd":5\}\)$/m);
    for (const verb of ['approve', 'deny', 'kill']) {
      expect(shown.stdout).toContain(`  chokepoint approvals ${verb} ${id} --reason "..."`);
    }
    expect(shown.stdout).toContain(
      `  chokepoint approvals extend ${id} --spend '+$1' --time +10m --reason "..."`,
    );

    const approved = await cli(['approvals', 'approve', id, '--reason', 'a 5 USD payment is fine']);
    expect(approved.stderr).toBe('');
    expect(approved.code).toBe(0);
    expect(approved.stdout).toMatch(
      new RegExp(
        `^approved ${id.replace('.', '\\.')} \\(gated@1, approval_required\\): run ${runId} is (running|done)\\n`,
      ),
    );
    expect(approved.stdout).toContain(`follow it: chokepoint runs show ${runId}`);
    const run = await h.api<{ run: { state: string } }>('GET', `/api/runs/${runId}?wait=10`);
    expect(run.body.run.state).toBe('done');

    // A second decision: exit 1 with the API's conflict message (and the envelope with --json).
    const [again, againJson, after] = await Promise.all([
      cli(['approvals', 'deny', id, '--reason', 'changed my mind']),
      cli(['approvals', 'kill', id, '--reason', 'changed my mind', '--json']),
      cli(['approvals', 'show', id]),
    ]);
    expect(again.code).toBe(1);
    expect(again.stdout).toBe('');
    expect(again.stderr).toBe(
      `chokepoint approvals: approval ${id} is already approved (approve by admin): nothing to decide\n`,
    );
    expect(againJson.code).toBe(1);
    expect(JSON.parse(againJson.stdout)).toMatchObject({
      type: 'error',
      chokepoint: { code: 'conflict', approval: id, state: 'approved', decided_by: 'admin' },
    });
    expect(after.stdout).toMatch(/^state +approved by admin at .*: a 5 USD payment is fine$/m);
    expect(after.stdout).toContain(`nothing to decide: ${id} is approved`);
  });

  it('extend and kill; --json prints the API answers; ls --state all shows every state', async () => {
    const [spend, cap] = await Promise.all([suspended('spender'), suspended('capped')]);
    const extended = await cli([
      'approvals',
      'extend',
      spend.id,
      '--spend',
      '+$1',
      '--time',
      '+1m',
      '--reason',
      'worth it',
    ]);
    expect(extended.stderr).toBe('');
    expect(extended.code).toBe(0);
    expect(extended.stdout).toMatch(
      /^extended \S+ \(spender@1, spend_box\): run \S+ is (running|done); spend box now \$1\.008, time box 2m\n/,
    );
    const killed = await cli(['approvals', 'kill', cap.id, '--reason', 'runaway loop', '--json']);
    expect(killed.code).toBe(0);
    const body = JSON.parse(killed.stdout);
    expect(body.approval).toMatchObject({
      id: cap.id,
      state: 'killed',
      decision: { action: 'kill', actor: 'admin', reason: 'runaway loop' },
    });
    expect(body.run).toMatchObject({ id: cap.runId, state: 'killed' });

    const [all, json, one, killedOnly] = await Promise.all([
      cli(['approvals', 'ls', '--state', 'all', '--team', 'cli-approvals']),
      cli(['approvals', 'ls', '--state', 'all', '--json', '--limit', '2']),
      cli(['approvals', 'show', spend.id, '--json']),
      cli(['approvals', 'ls', '--state', 'killed', '--workflow', 'capped', '--reason', 'step_cap']),
    ]);
    expect(all.code).toBe(0);
    const [header, ...rows] = all.stdout.trim().split('\n');
    expect(header).toMatch(
      /^ID\s+STATE\s+WORKFLOW\s+STARTED BY\s+WHY\s+SPENT\s+WAITING SINCE\s+EXPIRES IN \/ DECIDED$/,
    );
    expect(rows).toHaveLength(3);
    expect(rows.some((r) => /\s+killed\s+capped@1\s+.*step cap: 3 of 3 steps.*kill by admin$/.test(r))).toBe(
      true,
    );
    expect(
      rows.some((r) =>
        /\s+extended\s+spender@1\s+.*spend box: \$0\.00\d+ of \$0\.008.*extend by admin$/.test(r),
      ),
    ).toBe(true);
    expect(rows.some((r) => /\s+approved\s+gated@1\s+.*approve by admin$/.test(r))).toBe(true);

    const page = JSON.parse(json.stdout);
    expect(page.approvals).toHaveLength(2);
    expect(page.next).toEqual(expect.any(String));
    expect(JSON.parse(one.stdout).approval).toMatchObject({
      id: spend.id,
      state: 'extended',
      reason: 'spend_box',
      decision: { addSpend: { usd: '1.00' }, addTimeMs: 60_000 },
    });
    expect(killedOnly.stdout.trim().split('\n').slice(1)).toHaveLength(1);

    const next = await cli(['approvals', 'ls', '--state', 'all', '--limit', '2']);
    expect(next.stdout).toMatch(
      /\nmore approvals: chokepoint approvals ls --state all --limit 2 --cursor \S+\n$/,
    );
    const none = await cli(['approvals', 'ls', '--workflow', 'nothing-like-it']);
    expect(none.stdout).toBe('no approvals match\n');
  });

  it('API errors exit 1 with the message: unknown item, viewer token, a server without workflows', async () => {
    const { id } = await suspended('capped');
    const [missing, viewer, viewerLs] = await Promise.all([
      cli(['approvals', 'show', 'run_nope.1']),
      cli(['approvals', 'approve', id, '--reason', 'r'], { CHOKEPOINT_TOKEN: VIEWER_TOKEN }),
      cli(['approvals', 'ls'], { CHOKEPOINT_TOKEN: VIEWER_TOKEN }),
    ]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('no approval run_nope.1');
    expect(viewer.code).toBe(1);
    expect(viewer.stderr).toContain("this needs the operator role; token 'vera' is viewer");
    expect(viewerLs.code).toBe(0);
    expect(viewerLs.stdout).toContain(id);

    const bare = await startHarness();
    try {
      const r = await inProcess(approvalsCommand, ['ls', '--url', bare.url, '--token', ADMIN_TOKEN]);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain('this server does not host workflows or approvals');
    } finally {
      await bare.close();
    }
  });
});

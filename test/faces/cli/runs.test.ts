import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CliError, type Command, parseCommandArgs } from '../../../runtime/faces/cli/command.ts';
import { duration, resultText, runCommand, runsCommand } from '../../../runtime/faces/cli/commands/runs.ts';
import { ADMIN_TOKEN, type Harness, startHarness, VIEWER_TOKEN } from '../../helpers/harness.ts';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const BIN = 'bin/chokepoint.js';
const LOOKUP = '[[emulator:tool_use lookup={"order":"A1"}]]';

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

const agent = (id: string, opts: { steps?: number; echo?: string } = {}) => `
import { defineAgent, z } from 'chokepoint/workflow';
export default defineAgent({
  id: ${JSON.stringify(id)}, version: 1, description: 'test agent ${id}',
  input: z.object({ task: z.string().min(1) }),
  system: 'You are the ${id} agent.',
  tools: {
    lookup: {
      description: 'Looks up an order',
      input_schema: z.object({ order: z.string() }),
      run: ({ order }) => 'order ' + order + ': shipped ' + ${JSON.stringify(opts.echo ?? '')},
    },
  },
  limits: { spend: '$1.00', time: '1m', steps: ${opts.steps ?? 20} },
  task: (i) => i.task,
});
`;

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

describe('run / runs: usage errors are caught locally (exit 2)', () => {
  it.each([
    ['run', [], 'missing <workflow>'],
    ['run', ['triage', '--input', '{ticket:"x"}'], '--input: not valid JSON'],
    ['run', ['triage', '--input', '[1,2]'], '--input: expected a JSON object'],
    ['run', ['triage', '--input-file', '/nonexistent/ticket.json'], '--input-file: cannot read'],
    ['run', ['triage', '--input', '{}', '--input-file', 'x.json'], 'give --input or --input-file, not both'],
    ['run', ['triage', '--timeout', '5m'], '--timeout needs --wait'],
    ['run', ['triage', '--wait', '--timeout', 'soon'], '--timeout: expected a duration like 30s'],
    ['run', ['triage', '--team', 'pay ments'], "--team: letters, digits, '.'"],
    ['run', ['triage', 'extra'], 'unexpected argument "extra"'],
    ['runs', ['ls', '--state', 'sleeping'], '--state: expected one of running, suspended, done'],
    ['runs', ['ls', '--limit', 'ten'], '--limit: expected a whole number 1-1000'],
    ['runs', ['ls', '--limit', '0'], '--limit: expected a whole number 1-1000'],
    ['runs', ['ls', '--reason', 'x'], '--reason does not apply to `chokepoint runs ls`'],
    ['runs', ['show'], 'missing <id>\nusage: chokepoint runs show <id>'],
    ['runs', ['kill', 'run_x'], '--reason is required: say why you kill a run'],
    [
      'runs',
      ['kill', 'run_x', '--reason', 'runaway', 'agent'],
      'unexpected argument "agent" (quote a reason',
    ],
    ['runs', ['resume', 'run_x'], '--reason is required: say why you resume a run'],
    [
      'runs',
      ['resume', 'run_x', '--reason', 'r', '--approve', '--deny'],
      'give --approve or --deny, not both',
    ],
    ['runs', ['resume', 'run_x', '--reason', 'r', '--spend', 'lots'], '--spend: expected a dollar amount'],
    ['runs', ['resume', 'run_x', '--reason', 'r', '--time', '10 minutes'], '--time: expected a duration'],
    [
      'runs',
      ['kill', 'run_x', '--reason', 'r', '--spend', '1'],
      '--spend does not apply to `chokepoint runs kill`',
    ],
    ['runs', ['frob'], 'unknown subcommand "frob": expected ls, show, kill or resume'],
    ['runs', ['run_0abc'], 'did you mean `chokepoint runs show run_0abc`?'],
  ] as [string, string[], string][])('%s %j', async (name, argv, message) => {
    const r = await inProcess(name === 'run' ? runCommand : runsCommand, [...argv, ...NO_SERVER]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(message);
    expect(r.stdout).toBe('');
  });

  it.each([runCommand, runsCommand])('$name --help: usage, options, server options, examples', (cmd) => {
    expect(cmd.remote).toBe(true);
    expect(cmd.help).toMatch(/^Usage:/);
    expect(cmd.help).toContain(`chokepoint ${cmd.name} `);
    expect(cmd.help).toMatch(/\n {2}--reason TEXT/);
    expect(cmd.help).toContain('--url URL');
    expect(cmd.help).toContain('--token TOKEN');
    expect(cmd.help).toContain('--json');
    expect(cmd.help).toMatch(/\nExamples?:\n {2}chokepoint /);
  });

  it('run --help documents the exit codes', () => {
    expect(runCommand.help).toMatch(/Exit codes:\n {2}0 .*done/);
    expect(runCommand.help).toMatch(/\n {2}1 .*failed, killed/);
    expect(runCommand.help).toMatch(/\n {2}4 .*suspended/);
    expect(runCommand.help).toMatch(/\n {2}5 .*--timeout/);
  });

  it('formats durations and journal results in one line', () => {
    expect([
      duration(850),
      duration(1500),
      duration(90_000),
      duration(3_600_000),
      duration(undefined),
    ]).toEqual(['850ms', '1.5s', '1m 30s', '1h', '-']);
    expect(
      resultText({
        kind: 'model',
        result: { text: 'Let me\nlook', toolUses: [{ name: 'lookup', input: { order: 'A1' } }] },
      }),
    ).toBe('Let me look → lookup({"order":"A1"})');
    expect(resultText({ kind: 'tool', result: { content: 'boom', isError: true } })).toBe('error: boom');
    expect(resultText({ kind: 'tool', result: { content: 'x'.repeat(200), isError: false } })).toHaveLength(
      80,
    );
  });
});

/** The real CLI, as a child process, against an in-process server hosting small test workflows. */
describe('run / runs against a server', () => {
  let h: Harness;
  let env: Record<string, string>;
  let dir: string;

  const cli = (
    args: string[],
    opts: { env?: Record<string, string>; stdin?: string } = {},
  ): Promise<Result> =>
    new Promise((resolve) => {
      const child = execFile(
        process.execPath,
        [BIN, ...args],
        { cwd: ROOT, env: { ...env, ...opts.env }, timeout: 25_000 },
        (err, stdout, stderr) => {
          const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
          resolve({ code, stdout, stderr });
        },
      );
      if (opts.stdin !== undefined) child.stdin!.end(opts.stdin);
    });

  const runIdIn = (text: string) => /\b(run_\w+)/.exec(text)?.[1];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'cp-cli-runs-'));
    writeFileSync(join(dir, 'echo.ts'), agent('echo'));
    writeFileSync(join(dir, 'looper.ts'), agent('looper', { steps: 3, echo: LOOKUP }));
    writeFileSync(join(dir, 'ticket.json'), JSON.stringify({ task: `From a file ${LOOKUP}` }));
    h = await startHarness({
      workflows: dir,
      config: {
        routing: { classes: { cheap: ['claude-haiku-4-5'] } },
        auth: { operators: [{ name: 'vera', role: 'viewer', token: VIEWER_TOKEN }] },
      },
    });
    env = { ...baseEnv, CHOKEPOINT_URL: h.url, CHOKEPOINT_TOKEN: ADMIN_TOKEN };
  });
  afterAll(async () => {
    await h?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('run without --wait prints the run id and state and exits 0', async () => {
    const r = await cli(['run', 'echo', '--input', JSON.stringify({ task: 'hello' }), '--team', 'cli-runs']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(
      /^started run_\w+ \(echo@1\) as team:cli-runs env:default seat:admin: running\n/,
    );
    expect(r.stdout).toContain('follow it: chokepoint runs show run_');
  });

  it('run --wait prints the final state, steps, spend and output; exit 0 when done', async () => {
    const r = await cli(['run', 'echo', '--input', JSON.stringify({ task: `Where? ${LOOKUP}` }), '--wait']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const id = runIdIn(r.stdout)!;
    expect(r.stdout).toContain(`${id}  done\n`);
    expect(r.stdout).toMatch(/^ {2}steps +3 of 20$/m);
    expect(r.stdout).toMatch(/^ {2}spend +\$0\.\d+ of \$1\.00$/m);
    expect(r.stdout).toMatch(/^ {2}output +\{"answer":"Emulated reply after tool result/m);
  });

  it('run --input-file reads a file or stdin; --json prints the API run', async () => {
    const [file, stdin] = await Promise.all([
      cli(['run', 'echo', '--input-file', join(dir, 'ticket.json'), '--wait', '--json']),
      cli(['run', 'echo', '--input-file', '-', '--wait', '--json'], { stdin: '{"task":"from stdin"}' }),
    ]);
    expect(file.code).toBe(0);
    const run = JSON.parse(file.stdout).run;
    expect(run).toMatchObject({ state: 'done', steps: 3, input: { task: `From a file ${LOOKUP}` } });
    expect(stdin.code).toBe(0);
    expect(JSON.parse(stdin.stdout).run).toMatchObject({ state: 'done', input: { task: 'from stdin' } });
  });

  it('run --wait exits 4 when the run suspends and says how to resume; runs resume moves it on', async () => {
    const r = await cli(['run', 'looper', '--input', JSON.stringify({ task: `Loop ${LOOKUP}` }), '--wait']);
    expect(r.code).toBe(4);
    const id = runIdIn(r.stdout)!;
    expect(r.stdout).toContain(`${id}  suspended (step_cap)`);
    expect(r.stdout).toContain('suspended at its step cap (3 of 3)');
    expect(r.stdout).toContain(`chokepoint runs resume ${id} --reason "..."`);

    const shown = await cli(['runs', 'show', id]);
    expect(shown.code).toBe(0);
    expect(shown.stdout).toMatch(/^state +suspended \(step_cap\)$/m);
    expect(shown.stdout).toMatch(/^steps +3 of 3$/m);
    expect(shown.stdout).toMatch(/^input +\{"task":"Loop /m);
    expect(shown.stdout).toMatch(/^ {2}#\s+AT\s+KIND\s+NAME\s+LEDGER\s+RESULT$/m);
    expect(shown.stdout).toMatch(
      /^ {2}2\s+\d\d:\d\d:\d\d\.\d{3}\s+tool\s+lookup\s+led_\w+\s+order A1: shipped/m,
    );

    const resumed = await cli(['runs', 'resume', id, '--reason', 'one more round', '--spend', '2.50']);
    expect(resumed.stderr).toBe('');
    expect(resumed.code).toBe(0);
    expect(resumed.stdout).toContain(`resumed ${id} (looper@1): running; limits now $2.50, 1m, 6 steps`);
    const after = await h.api<{ run: { state: string; steps: number } }>('GET', `/api/runs/${id}?wait=10`);
    expect(after.body.run).toMatchObject({ state: 'suspended', steps: 6 });

    const killed = await cli(['runs', 'kill', id, '--reason', 'enough looping']);
    expect(killed.code).toBe(0);
    expect(killed.stdout).toMatch(
      new RegExp(`^killed ${id} \\(looper@1\\) after 6 steps, spent \\$0\\.\\d+`),
    );

    const [again, againJson, resumeDone] = await Promise.all([
      cli(['runs', 'kill', id, '--reason', 'again']),
      cli(['runs', 'kill', id, '--reason', 'again', '--json']),
      cli(['runs', 'resume', id, '--reason', 'again']),
    ]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain(`chokepoint runs: run ${id} already ended (killed)`);
    expect(againJson.code).toBe(1);
    expect(JSON.parse(againJson.stdout)).toMatchObject({ type: 'error', chokepoint: { code: 'conflict' } });
    expect(resumeDone.code).toBe(1);
    expect(resumeDone.stderr).toContain('not suspended');
  });

  it('run --wait exits 5 when --timeout passes first, and 1 when the run is killed while waiting', async () => {
    // A minute of provider latency: both runs are certainly still running when they are killed
    // (the kill aborts the provider call, so nothing waits that minute), however loaded the machine.
    const slow = JSON.stringify({ task: 'Think [[emulator:latency=60000]]' });
    const t0 = Date.now();
    const timedOut = await cli(['run', 'echo', '--input', slow, '--wait', '--timeout', '1s']);
    expect(timedOut.code).toBe(5);
    expect(timedOut.stdout).toMatch(/run_\w+ {2}running/);
    expect(timedOut.stdout).toContain('still running');
    const slowId = runIdIn(timedOut.stdout)!;

    const waiting = cli(['run', 'echo', '--input', slow, '--wait', '--team', 'cli-doomed']);
    let id: string | undefined;
    for (let i = 0; i < 400 && !id; i++) {
      const res = await h.api<{ runs: { id: string }[] }>('GET', '/api/runs?team=cli-doomed&state=running');
      id = res.body.runs[0]?.id;
      if (!id) await new Promise((r) => setTimeout(r, 25));
    }
    expect(id).toBeDefined();
    const [killed, killedSlow] = await Promise.all([
      h.api('POST', `/api/runs/${id}/kill`, { reason: 'runaway' }),
      cli(['runs', 'kill', slowId, '--reason', 'tidy up', '--json']),
    ]);
    expect(killed.status).toBe(200);
    expect(killedSlow.code).toBe(0);
    expect(JSON.parse(killedSlow.stdout).run).toMatchObject({ id: slowId, state: 'killed' });
    const r = await waiting;
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(`${id}  killed (killed)`);
    expect(Date.now() - t0).toBeLessThan(20_000);
  });

  it('runs ls: a table, filters, --json and a cursor hint for the next page', async () => {
    for (let i = 0; i < 3; i++) {
      await h.api('POST', '/api/runs', {
        workflow: 'echo',
        input: { task: `ls ${i}` },
        team: 'cli-ls',
        wait: 10,
      });
    }
    const [table, page, json, none] = await Promise.all([
      cli(['runs', 'ls', '--team', 'cli-ls']),
      cli(['runs', 'ls', '--team', 'cli-ls', '--limit', '2']),
      cli(['runs', '--json', '--team', 'cli-ls', '--state', 'done']),
      cli(['runs', 'ls', '--workflow', 'nothing-like-it']),
    ]);
    expect(table.code).toBe(0);
    const [header, ...rows] = table.stdout.trim().split('\n');
    expect(header).toMatch(/^ID\s+WORKFLOW\s+STATE\s+REASON\s+STEPS\s+SPEND\s+STARTED$/);
    expect(rows).toHaveLength(3);
    for (const row of rows) {
      expect(row).toMatch(/^run_\w+\s+echo@1\s+done\s+-\s+1\/20\s+\$0\.\d+\s+\d{4}-\d\d-\d\d \d\d:\d\dZ$/);
    }
    expect(
      page.stdout
        .trim()
        .split('\n')
        .filter((l) => l.startsWith('run_')),
    ).toHaveLength(2);
    expect(page.stdout).toMatch(/more runs: chokepoint runs ls --team cli-ls --limit 2 --cursor \S+/);
    const body = JSON.parse(json.stdout);
    expect(body.runs).toHaveLength(3);
    expect(body.runs[0]).toMatchObject({ workflow: 'echo', state: 'done', identity: { team: 'cli-ls' } });
    expect(none.stdout).toBe('no runs match\n');
  });

  it('API errors exit 1 with the API message: bad input field, unknown workflow, viewer, unknown run', async () => {
    const [input, unknown, viewer, missing, missingJson] = await Promise.all([
      cli(['run', 'echo', '--input', '{"task":42}']),
      cli(['run', 'nope', '--wait']),
      cli(['run', 'echo', '--input', '{"task":"x"}'], { env: { CHOKEPOINT_TOKEN: VIEWER_TOKEN } }),
      cli(['runs', 'show', 'run_nope']),
      cli(['runs', 'show', 'run_nope', '--json']),
    ]);
    for (const r of [input, unknown, viewer, missing, missingJson]) expect(r.code).toBe(1);
    expect(input.stderr).toMatch(/^chokepoint run: input\.task: /);
    expect(unknown.stderr).toContain("no workflow 'nope'");
    expect(viewer.stderr).toContain("this needs the operator role; token 'vera' is viewer");
    expect(missing.stderr).toContain('no run run_nope');
    expect(JSON.parse(missingJson.stdout)).toMatchObject({ chokepoint: { code: 'not_found' } });
  });

  it('invalid JSON in --input through the real binary: exit 2, names the flag, nothing started', async () => {
    const before = await h.api<{ runs: unknown[] }>('GET', '/api/runs?limit=1000');
    const r = await cli(['run', 'echo', '--input', "{'task': 'x'}"]);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^chokepoint run: --input: not valid JSON/);
    const after = await h.api<{ runs: unknown[] }>('GET', '/api/runs?limit=1000');
    expect(after.body.runs.length).toBe(before.body.runs.length);
  });
});

describe('run against a server without workflows', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(() => h?.close());

  it('exits 1 saying the server does not host workflows', async () => {
    const r = await inProcess(runsCommand, ['ls', '--url', h.url, '--token', ADMIN_TOKEN]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('this server does not host workflows');
  });
});

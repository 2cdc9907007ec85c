import { execFile } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import Anthropic from '@anthropic-ai/sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_TOKEN, type Harness, startHarness } from '../../helpers/harness.ts';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const BIN = 'bin/chokepoint.js';

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

/** Environment of the parent minus any CHOKEPOINT_* the developer may have set. */
const baseEnv = Object.fromEntries(
  Object.entries(process.env).filter(
    (e): e is [string, string] => !e[0].startsWith('CHOKEPOINT_') && e[1] !== undefined,
  ),
);

/** A closed port on localhost: connecting to it is refused. */
async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  await new Promise((r) => srv.close(r));
  return port;
}

const call = (client: Anthropic) =>
  client.messages.create({
    model: 'claude-haiku-4-5',
    max_tokens: 50,
    messages: [{ role: 'user', content: 'ping' }],
  });

const failure = (p: Promise<unknown>) =>
  p.then(
    () => undefined,
    (e: unknown) => e as InstanceType<typeof Anthropic.APIError>,
  );

/** The real CLI, as a child process, against the in-process server (execFile async: the server must keep serving). */
describe('remote CLI commands (budgets, kill, unkill, keys)', () => {
  let h: Harness;
  let env: Record<string, string>;

  const cli = (args: string[], extraEnv: Record<string, string> = {}): Promise<Result> =>
    new Promise((resolve) => {
      execFile(
        process.execPath,
        [BIN, ...args],
        { cwd: ROOT, env: { ...env, ...extraEnv }, timeout: 20_000 },
        (err, stdout, stderr) => {
          const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
          resolve({ code, stdout, stderr });
        },
      );
    });

  const sdk = (key: string) => new Anthropic({ baseURL: h.url, apiKey: key, maxRetries: 0 });

  beforeAll(async () => {
    h = await startHarness();
    env = { ...baseEnv, CHOKEPOINT_URL: h.url, CHOKEPOINT_TOKEN: ADMIN_TOKEN };
  });
  afterAll(async () => {
    await h?.close();
  });

  it('keys create prints the key once; the key works; keys revoke makes the next call a 401', async () => {
    const created = await cli([
      'keys',
      'create',
      '--team',
      'cli-keys',
      '--env',
      'prod',
      '--seat',
      'alice',
      '--label',
      'alice laptop',
      '--reason',
      'onboarding',
    ]);
    expect(created.stderr).toBe('');
    expect(created.code).toBe(0);
    expect(created.stdout).toContain('shown only once');
    expect(created.stdout).toContain('team:cli-keys env:prod seat:alice');
    const key = /\b(cp_[\w-]+)/.exec(created.stdout)?.[1];
    const id = /\b(key_\w+)/.exec(created.stdout)?.[1];
    expect(key).toBeDefined();
    expect(id).toBeDefined();

    const [msg, listed] = await Promise.all([call(sdk(key!)), cli(['keys', 'ls'])]);
    expect(msg.type).toBe('message');
    expect(listed.code).toBe(0);
    const row = listed.stdout.split('\n').find((l) => l.startsWith(id!));
    expect(row).toMatch(/cli-keys\s+prod\s+alice\s+-\s+alice laptop\s+report\s+.*active$/);
    expect(listed.stdout).not.toContain(key!);

    const revoked = await cli(['keys', 'revoke', id!, '--reason', 'laptop lost']);
    expect(revoked.code).toBe(0);
    expect(revoked.stdout).toContain(`revoked ${id}`);

    const err = await failure(call(sdk(key!)));
    expect(err).toBeInstanceOf(Anthropic.AuthenticationError);
    expect(err?.status).toBe(401);
    const audit = await h.api<{ entries: { action: string; reason: string }[] }>(
      'GET',
      `/api/audit?target=key:${id}`,
    );
    expect(audit.body.entries.map((e) => [e.action, e.reason])).toEqual([
      ['key.revoke', 'laptop lost'],
      ['key.create', 'onboarding'],
    ]);
  });

  it('budgets set-ceiling with a reason shows in budgets show, with the audit trail before/after', async () => {
    const set = await cli(['budgets', 'set-ceiling', 'team:cli-budget', '$75', '--reason', 'launch week']);
    expect(set.stderr).toBe('');
    expect(set.code).toBe(0);
    expect(set.stdout).toContain('team:cli-budget: ceiling is now $75.00 per day');
    const frozen = await cli(['budgets', 'freeze', 'team:cli-budget', '--reason', 'runaway agent']);
    expect(frozen.code).toBe(0);

    const [show, ls] = await Promise.all([
      cli(['budgets', 'show', 'team:cli-budget']),
      cli(['budgets', 'ls', '--kind', 'team']),
    ]);
    expect(show.code).toBe(0);
    expect(show.stdout).toMatch(/^state\s+frozen$/m);
    expect(show.stdout).toMatch(/^spent\s+\$0\.00 of \$75\.00 \(0%\)$/m);
    expect(show.stdout).toMatch(/admin\s+budget\.freeze\s+active → frozen\s+runaway agent/);
    expect(show.stdout).toMatch(/admin\s+budget\.ceiling\s+\$50\.00 → \$75\.00\s+launch week/);
    expect(show.stdout.indexOf('budget.freeze')).toBeLessThan(show.stdout.indexOf('budget.ceiling'));

    expect(ls.code).toBe(0);
    const [header, ...rows] = ls.stdout.split('\n');
    expect(header).toMatch(/^SCOPE\s+STATE\s+WINDOW\s+SPENT\s+RESERVED\s+CEILING\s+USED\s+RESETS\s+ID$/);
    expect(rows.find((l) => l.startsWith('team:cli-budget '))).toMatch(
      /frozen\s+day\s+\$0\.00\s+\$0\.00\s+\$75\.00\s+0%\s+in \d+[hm]/,
    );
    expect(ls.stdout).toContain('new budgets start at: team $50.00/day');
  });

  it('catches a bad amount and a missing reason locally: exit 2, nothing sent', async () => {
    const [amount, noReason] = await Promise.all([
      cli(['budgets', 'set-ceiling', 'team:cli-usage', 'fifty', '--reason', 'x']),
      cli(['budgets', 'set-ceiling', 'team:cli-usage', '50.00']),
    ]);
    for (const r of [amount, noReason]) {
      expect(r.code).toBe(2);
      expect(r.stdout).toBe('');
    }
    expect(amount.stderr).toBe('chokepoint budgets: expected a dollar amount like "50.00", got "fifty"\n');
    expect(noReason.stderr).toContain('--reason is required');
    const audit = await h.api<{ entries: unknown[] }>('GET', '/api/audit?target=team:cli-usage');
    expect(audit.body.entries).toEqual([]);
  });

  it('kill refuses the next gateway call of the team; unkill admits the next one again', async () => {
    const { key } = await h.client({ team: 'cli-kill' });
    const quiet = sdk(key);
    expect((await call(quiet)).type).toBe('message');

    const killed = await cli(['kill', 'team:cli-kill', '--reason', 'agent loop']);
    expect(killed.code).toBe(0);
    expect(killed.stdout).toContain('killed team:cli-kill');

    const [refused, list] = await Promise.all([failure(call(quiet)), cli(['kill', '--list'])]);
    expect(refused?.status).toBe(403);
    expect((refused?.error as { chokepoint?: { code?: string } } | undefined)?.chokepoint?.code).toBe(
      'killed',
    );
    expect(list.stdout).toMatch(/^SCOPE\s+SINCE\s+BY\s+REASON$/m);
    expect(list.stdout).toMatch(/^team:cli-kill\s+\d{4}-\d\d-\d\d \d\d:\d\dZ\s+admin\s+agent loop$/m);

    const lifted = await cli(['unkill', 'team:cli-kill', '--reason', 'loop fixed']);
    expect(lifted.code).toBe(0);
    expect(lifted.stdout).toContain('lifted the kill switch on team:cli-kill');

    const [again, ls] = await Promise.all([call(quiet), cli(['kill', 'ls'])]);
    expect(again.type).toBe('message');
    expect(ls.stdout).not.toContain('team:cli-kill');
  });

  it('--json prints the raw API JSON, errors included', async () => {
    await h.api('POST', '/api/kill-switches', { scope: 'seat:cli-json', reason: 'json test' });
    const [show, kills, created, notFound] = await Promise.all([
      cli(['budgets', 'show', 'team:cli-json', '--json']),
      cli(['kill', '--list', '--json']),
      cli(['keys', 'create', '--team', 'cli-json', '--env', 'dev', '--seat', 'bot', '--json']),
      cli(['keys', 'revoke', 'key_nope', '--json']),
    ]);
    for (const r of [show, kills, created]) expect(r.code).toBe(0);
    expect(JSON.parse(show.stdout)).toMatchObject({
      budget: { scope: 'team:cli-json', ceiling_usd: '50.00', state: 'active' },
      audit: [],
    });
    expect(JSON.parse(kills.stdout).kill_switches).toContainEqual(
      expect.objectContaining({ scope: 'seat:cli-json', reason: 'json test', actor: 'admin' }),
    );
    expect(JSON.parse(created.stdout)).toMatchObject({
      key: expect.stringMatching(/^cp_/),
      record: { team: 'cli-json', env: 'dev', seat: 'bot' },
    });
    expect(notFound.code).toBe(1);
    expect(JSON.parse(notFound.stdout)).toMatchObject({ type: 'error', chokepoint: { code: 'not_found' } });
    expect(notFound.stderr).toContain('no key "key_nope"');
  });

  it('says how to get a token when it is missing (exit 2) or refused (exit 1)', async () => {
    const [missing, refused] = await Promise.all([
      cli(['budgets', 'ls'], { CHOKEPOINT_TOKEN: '' }),
      cli(['keys', 'ls', '--token', 'cpo_wrong']),
    ]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain(
      'pass --token or set CHOKEPOINT_TOKEN; `npm start` prints the admin token, also in .chokepoint/admin-token',
    );
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(`${h.url} refused the operator token: pass --token`);
  });

  it('names the URL and suggests `chokepoint serve` when the server is unreachable', async () => {
    const url = `http://127.0.0.1:${await closedPort()}`;
    const [viaEnv, viaFlag] = await Promise.all([
      cli(['kill', '--list'], { CHOKEPOINT_URL: url }),
      cli(['budgets', 'set-ceiling', 'team:x', '5', '--reason', 'r', '--url', `${url}/`]),
    ]);
    for (const r of [viaEnv, viaFlag]) {
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`cannot reach Chokepoint at ${url} (ECONNREFUSED)`);
      expect(r.stderr).toContain('`chokepoint serve`');
    }
  });

  it('--help through the real binary: usage, options, server options and an example', async () => {
    const r = await cli(['kill', '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Usage:\n {2}chokepoint kill <scope> --reason TEXT/);
    expect(r.stdout).toContain('--token TOKEN');
    expect(r.stdout).toMatch(/Examples:\n {2}chokepoint kill team:payments/);
  });
});

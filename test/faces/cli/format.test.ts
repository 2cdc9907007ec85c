import { describe, expect, it } from 'vitest';
import { ApiClient, remoteSettings, subArgs } from '../../../runtime/faces/cli/client.ts';
import { CliError } from '../../../runtime/faces/cli/command.ts';
import { describeChange } from '../../../runtime/faces/cli/commands/budgets.ts';
import { dollars, keyValues, shortTime, table, until } from '../../../runtime/faces/cli/table.ts';

describe('table formatting', () => {
  it('aligns columns, right-aligns money, never pads the last column, and shows gaps as -', () => {
    expect(
      table(
        ['SCOPE', { header: 'SPENT', align: 'right' }, 'REASON'],
        [
          ['team:payments', '$1.00', 'a\nb'],
          ['global', '$120.50', undefined],
        ],
      ),
    ).toEqual(['SCOPE            SPENT  REASON', 'team:payments    $1.00  a b', 'global         $120.50  -']);
  });

  it('formats key/value blocks, dollars and times', () => {
    expect(
      keyValues([
        ['id', 'k1'],
        ['label', undefined],
        ['identity', 'team:a'],
      ]),
    ).toEqual(['id        k1', 'identity  team:a']);
    expect(dollars('12.34')).toBe('$12.34');
    expect(dollars('-0.5')).toBe('-$0.5');
    expect(shortTime('2025-06-01T14:03:59.000Z')).toBe('2025-06-01 14:03Z');
    expect(shortTime(null)).toBe('-');
    const now = Date.parse('2025-06-01T00:00:00Z');
    expect(until('2025-06-01T05:12:00Z', now)).toBe('in 5h 12m');
    expect(until('2025-06-04T04:00:00Z', now)).toBe('in 3d 4h');
    expect(until('2025-05-31T00:00:00Z', now)).toBe('now');
  });

  it('describes audit changes before → after', () => {
    expect(
      describeChange({
        action: 'budget.ceiling',
        before: { ceiling: 50_000_000 },
        after: { ceiling: 75_500_000 },
      }),
    ).toBe('$50.00 → $75.50');
    expect(
      describeChange({ action: 'budget.freeze', before: { frozen: false }, after: { frozen: true } }),
    ).toBe('active → frozen');
    expect(describeChange({ action: 'kill.set', before: null, after: {} })).toBe('live → killed');
    expect(describeChange({ action: 'other', before: { a: 1 }, after: { a: 2 } })).toBe('{"a":1} → {"a":2}');
  });
});

describe('remote settings', () => {
  it('takes --url/--token over the environment over the default, and strips trailing slashes', () => {
    expect(remoteSettings({}, { CHOKEPOINT_TOKEN: 't' })).toEqual({
      url: 'http://127.0.0.1:8787',
      token: 't',
      json: false,
    });
    expect(
      remoteSettings(
        { url: 'https://cp.example.com/', token: 'flag', json: true },
        { CHOKEPOINT_URL: 'http://env', CHOKEPOINT_TOKEN: 'env' },
      ),
    ).toEqual({ url: 'https://cp.example.com', token: 'flag', json: true });
  });

  it('a missing token or a bad URL is a usage error (exit 2)', () => {
    const err = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        return e as CliError;
      }
      throw new Error('expected a CliError');
    };
    const noToken = err(() => remoteSettings({}, {}));
    expect(noToken).toBeInstanceOf(CliError);
    expect(noToken.exitCode).toBe(2);
    expect(noToken.message).toContain('pass --token or set CHOKEPOINT_TOKEN');
    expect(err(() => remoteSettings({ url: 'nope' }, { CHOKEPOINT_TOKEN: 't' })).message).toContain(
      '--url: expected an http(s) URL',
    );
    expect(err(() => ApiClient.from({ token: '  ' }, {})).exitCode).toBe(2);
  });

  it('checks positionals and options per subcommand', () => {
    const sub = { command: 'budgets show', usage: 'budgets show <id|scope>', args: ['<id|scope>'] };
    expect(subArgs(sub, { json: true }, ['team:a'])).toEqual(['team:a']);
    expect(() => subArgs(sub, {}, [])).toThrow('missing <id|scope>');
    expect(() => subArgs(sub, { reason: 'x' }, ['team:a'])).toThrow('--reason does not apply');
    expect(() => subArgs(sub, {}, ['team:a', 'b'])).toThrow('unexpected argument "b"');
  });
});

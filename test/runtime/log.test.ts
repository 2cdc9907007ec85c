import { describe, expect, it } from 'vitest';
import { createLogger, redact } from '../../runtime/log.ts';

function lines(base?: Record<string, unknown>) {
  const out: string[] = [];
  const log = createLogger({ level: 'info', pretty: false, write: (l) => out.push(l), base });
  return { log, out, json: () => out.map((l) => JSON.parse(l) as Record<string, unknown>) };
}

const KEY = 'cp_live-0123456789abcdef';

describe('log lines', () => {
  it('are one JSON object: time, level, msg, then the logger base, then the fields', () => {
    const { log, out } = lines({ service: 'gw', team: 'base' });
    log.info('model call', { requestId: 'req_1', team: 'payments', tokens: { input: 3, output: 1 } });
    expect(out[0]).toMatch(
      /^\{"time":"[^"]+","level":"info","msg":"model call","service":"gw","team":"payments",/,
    );
    expect(JSON.parse(out[0]!)).toMatchObject({ requestId: 'req_1', tokens: { input: 3, output: 1 } });
  });

  it('mask a key-shaped value anywhere, and any value under a secret-looking name', () => {
    const { log, json } = lines();
    log.warn(`bad key ${KEY}`, {
      error: new Error(`refused ${KEY}`),
      nested: { list: [`x ${KEY}`], authorization: 'Bearer abc', apiKey: undefined },
      token: 'plain',
      anthropic: 'sk-ant-api03-abcdefghijkl',
      cpu: 'cpu 12%',
    });
    const [l] = json();
    expect(l).toMatchObject({
      msg: 'bad key cp_l…[redacted]',
      error: { name: 'Error', message: 'refused cp_l…[redacted]' },
      nested: { list: ['x cp_l…[redacted]'], authorization: '[redacted]' },
      token: '[redacted]',
      anthropic: 'sk-a…[redacted]',
      cpu: 'cpu 12%',
    });
    expect(JSON.stringify(l)).not.toContain('0123456789abcdef');
  });

  it('let a field replace a head or base key in place, and never write a __proto__ field', () => {
    const { log, out } = lines({ a: 1 });
    log.info('m', JSON.parse('{"level":"custom","a":2,"__proto__":{"x":1},"b":3}'));
    expect(out[0]).toMatch(/^\{"time":"[^"]+","level":"custom","msg":"m","a":2,"b":3\}$/);
  });

  it('redact() copies objects with secrets masked, as before', () => {
    expect(redact({ password: 'p', ok: [KEY, 1, null] })).toEqual({
      password: '[redacted]',
      ok: ['cp_l…[redacted]', 1, null],
    });
  });
});

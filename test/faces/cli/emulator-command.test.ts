import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import Anthropic from '@anthropic-ai/sdk';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const BIN = 'bin/chokepoint.js';

/** `chokepoint emulator` as a child process; resolves with its URL and admin key once it listens. */
function startEmulator(args: string[]): Promise<{ proc: ChildProcess; url: string; adminKey: string }> {
  const proc = spawn(process.execPath, [BIN, 'emulator', '--port', '0', ...args], { cwd: ROOT });
  let out = '';
  return new Promise((resolve, reject) => {
    proc.stdout!.on('data', (d) => {
      out += d;
      const url = /listening on (http:\/\/\S+)/.exec(out)?.[1];
      const adminKey = /admin key (\S+)/.exec(out)?.[1];
      if (url && adminKey) resolve({ proc, url, adminKey });
    });
    proc.once('exit', (code) => reject(new Error(`emulator exited (${code}): ${out}`)));
  });
}

describe('chokepoint emulator --keep-calls', () => {
  const procs: ChildProcess[] = [];
  afterAll(() => {
    for (const p of procs) p.kill('SIGTERM');
  });

  it('lists only the most recent calls call by call; totals still count every call', async () => {
    const emu = await startEmulator(['--keep-calls', '2']);
    procs.push(emu.proc);
    const client = new Anthropic({ baseURL: emu.url, apiKey: 'sk-emulator-local', maxRetries: 0 });
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const m = await client.messages.create({
        model: 'claude-haiku-4-5',
        max_tokens: 16,
        messages: [{ role: 'user', content: `call ${i}` }],
      });
      ids.push(m.id);
    }
    const res = await fetch(`${emu.url}/_emulator/billing`, { headers: { 'x-api-key': emu.adminKey } });
    const bill = (await res.json()) as { calls: number; total_micros: number; entries: { id: string }[] };
    expect(bill.calls).toBe(5);
    expect(bill.total_micros).toBeGreaterThan(0);
    // Trimmed to the last 2 once it holds more than 1.5 × 2: at most 3, the newest last.
    expect(bill.entries.length).toBeGreaterThanOrEqual(2);
    expect(bill.entries.length).toBeLessThanOrEqual(3);
    expect(bill.entries.at(-1)!.id).toBe(ids.at(-1));
  });

  it.each([['0'], ['=-3'], ['lots'], ['1.5']])('refuses --keep-calls%s with the option named', async (v) => {
    const args = v.startsWith('=') ? [`--keep-calls${v}`] : ['--keep-calls', v];
    const r = await new Promise<{ code: number; stderr: string }>((resolve) =>
      execFile(
        process.execPath,
        [BIN, 'emulator', '--port', '0', ...args],
        { cwd: ROOT },
        (err, _o, stderr) => resolve({ code: err ? Number(err.code) : 0, stderr }),
      ),
    );
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--keep-calls: expected a whole number >= 1');
  });
});

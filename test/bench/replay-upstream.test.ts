import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Recording } from '../../bench/replay-upstream.ts';

/**
 * The gateway benchmark's replay upstream (bench/replay-upstream.ts): the recorded answer to a
 * streaming call for a body that asks for a stream, the other for the rest, byte for byte, each
 * with a request-id of its own, after the latency it was given.
 */
const root = join(import.meta.dirname, '../..');
const procs: ChildProcess[] = [];
const dir = mkdtempSync(join(tmpdir(), 'cp-replay-test-'));
afterAll(() => {
  for (const p of procs) p.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

function start(file: string, latencyMs: number): Promise<string> {
  const p = spawn(
    process.execPath,
    [
      join(root, 'bin/run-ts.js'),
      join(root, 'bench/replay-upstream.ts'),
      file,
      '--latency',
      String(latencyMs),
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  procs.push(p);
  return new Promise((resolve, reject) => {
    let out = '';
    p.stdout!.on('data', (d) => {
      out += d;
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) resolve(m[1]!);
    });
    p.on('exit', (code) => reject(new Error(`replay upstream exited ${code}: ${out}`)));
  });
}

describe('bench replay upstream', () => {
  const message = JSON.stringify({ type: 'message', usage: { input_tokens: 8, output_tokens: 5 } });
  const stream = 'event: message_start\ndata: {"type":"message_start"}\n\nevent: message_stop\ndata: {}\n\n';
  const rec: Recording = {
    message: { status: 200, contentType: 'application/json', body: Buffer.from(message).toString('base64') },
    stream: {
      status: 200,
      contentType: 'text/event-stream; charset=utf-8',
      body: Buffer.from(stream).toString('base64'),
    },
  };
  const file = join(dir, 'recording.json');
  writeFileSync(file, JSON.stringify(rec));
  const post = (url: string, body: unknown) =>
    fetch(`${url}/v1/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });

  it('serves the recorded answers byte for byte, a fresh request-id each', async () => {
    const url = await start(file, 0);
    const a = await post(url, { model: 'm', max_tokens: 1, messages: [] });
    const b = await post(url, { model: 'm', max_tokens: 1, stream: true, messages: [] });
    const c = await post(url, { model: 'm', max_tokens: 1, messages: [] });
    expect([a.status, b.status]).toEqual([200, 200]);
    expect(a.headers.get('content-type')).toBe('application/json');
    expect(await a.text()).toBe(message);
    expect(b.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
    expect(await b.text()).toBe(stream);
    await c.text();
    const ids = [a, b, c].map((r) => r.headers.get('request-id'));
    expect(new Set(ids).size).toBe(3);
  });

  it('answers after its latency', async () => {
    const url = await start(file, 150);
    const t0 = performance.now();
    const r = await post(url, { model: 'm', max_tokens: 1, messages: [] });
    await r.text();
    expect(performance.now() - t0).toBeGreaterThanOrEqual(145);
  });
});

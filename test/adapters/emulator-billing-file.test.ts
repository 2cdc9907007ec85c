import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Anthropic from '@anthropic-ai/sdk';
import { afterAll, describe, expect, it } from 'vitest';
import { createEmulator } from '../../adapters/emulator/index.ts';

describe('the emulator keeps its bill across restarts when given a file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cp-emu-bill-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('reads back every billed call, totals and reports included, after a restart', async () => {
    const file = join(dir, 'billing.jsonl');
    const first = createEmulator({ apiKey: 'sk-emulator-local', billingFile: file });
    const l = await first.listen({ port: 0, host: '127.0.0.1' });
    const client = new Anthropic({ baseURL: l.url, apiKey: 'sk-emulator-local', maxRetries: 0 });
    for (const model of ['claude-haiku-5-5', 'claude-sonnet-5-5']) {
      await client.messages.create({ model, max_tokens: 50, messages: [{ role: 'user', content: 'hi' }] });
    }
    const total = first.billing.total();
    expect(total).toBeGreaterThan(0);
    await l.close();

    const again = createEmulator({ apiKey: 'sk-emulator-local', billingFile: file });
    expect(again.billing.total()).toBe(total);
    expect(again.billing.calls).toBe(2);
    expect(again.billing.list().map((e) => e.model)).toEqual(['claude-haiku-5-5', 'claude-sonnet-5-5']);
    expect([...again.billing.rollups()].reduce((n, r) => n + r.calls, 0)).toBe(2);
    again.billing.clear();
    expect(createEmulator({ billingFile: file }).billing.total()).toBe(0);
  });
});

describe('the in-process emulator of `serve` keeps its bill in the data folder', () => {
  it('a reconciliation after a restart still sees what was billed before it', async () => {
    const { resolveConfig } = await import('../../runtime/config/load.ts');
    const { createLogger } = await import('../../runtime/log.ts');
    const { openRuntime } = await import('../../runtime/runtime.ts');
    const dataDir = mkdtempSync(join(tmpdir(), 'cp-emu-restart-'));
    try {
      const config = resolveConfig({ dataDir }, { env: {} });
      const log = createLogger({ level: 'silent' });
      const rt = await openRuntime(config, log);
      const client = new Anthropic({
        baseURL: rt.emulatorUrl!,
        apiKey: rt.emulatorApiKey!,
        maxRetries: 0,
      });
      await client.messages.create({
        model: 'claude-haiku-5-5',
        max_tokens: 20,
        messages: [{ role: 'user', content: 'x' }],
      });
      const billed = rt.emulator!.billing.total();
      expect(billed).toBeGreaterThan(0);
      await rt.close();
      const again = await openRuntime(config, log);
      expect(again.emulator!.billing.total()).toBe(billed);
      await again.close();
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

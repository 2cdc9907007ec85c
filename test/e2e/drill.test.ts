import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_TOKEN, type Harness, startHarness } from '../helpers/harness.ts';
import { type Served, serveProcess } from '../helpers/serve.ts';

const run = promisify(execFile);
const TOKEN = 'cpo_e2e-drill-token-0123456789';

describe('chokepoint drill against the default `chokepoint serve`', () => {
  let served: Served;
  beforeAll(async () => {
    served = await serveProcess({ CHOKEPOINT_ADMIN_TOKEN: TOKEN });
  });
  afterAll(async () => {
    await served?.stop();
  });

  it('prints where everything is and that the provider is the emulator', () => {
    expect(served.output()).toMatch(/gateway\s+http:\/\/127\.0\.0\.1:\d+\/v1\/messages/);
    expect(served.output()).toMatch(/provider\s+emulator\s+\(EMULATOR/);
    expect(served.output()).toMatch(/store\s+embedded/);
  });

  it('refuses the runaway within its ceiling, catches drift, and the kill switch bites on the next request', async () => {
    const { stdout } = await run('node', [
      'bin/chokepoint.js',
      'drill',
      '--json',
      '--url',
      served.url,
      '--token',
      TOKEN,
    ]);
    const report = JSON.parse(stdout);
    expect(report.passed).toBe(true);
    expect(report.provider).toBe('anthropic');
    expect(report.face).toBe('POST /v1/messages');
    expect(report.refusalStatus).toBe(429);
    expect(report.refusalCode).toBe('budget_exhausted');
    expect(report.withinCeiling).toBe(true);
    expect(report.callsThrough).toBeGreaterThan(3);
    expect(Number(report.spentUsd)).toBeLessThanOrEqual(0.5);
    expect(Number(report.unbounded.uncachedUsd)).toBeGreaterThan(Number(report.unbounded.cachedUsd));
    expect(report.killSwitch.tookEffectOnNextRequest).toBe(true);
    expect(report.drift.caught).toBe(true);
    expect(report.drift.description).toMatch(/system\[0\] changed at character \d+/);
  });

  it('fails (exit 1) when the ceiling is too high to be reached within --max-calls', async () => {
    const err = await run('node', [
      'bin/chokepoint.js',
      'drill',
      '--json',
      '--url',
      served.url,
      '--token',
      TOKEN,
      '--ceiling',
      '100',
      '--max-calls',
      '3',
    ]).catch((e) => e);
    expect(err.code).toBe(1);
    expect(JSON.parse(err.stdout).passed).toBe(false);
  });

  it('stops gracefully on SIGTERM', async () => {
    expect(await served.stop()).toBe(0);
  });
});

type Entry = Record<string, any>;

/**
 * `--provider bedrock|vertex`: the same runaway through the Bedrock and Vertex faces in their
 * own wire formats, against a harness server whose emulator opens the Bedrock and Vertex
 * providers (the real adapters: SigV4 and event-stream, Vertex paths). The refusal is read from
 * the face's own error shape, and the seat's ledger names the drilled provider.
 */
describe('chokepoint drill --provider, through the Bedrock and Vertex faces', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(async () => {
    await h?.close();
  });

  const drill = async (...args: string[]) => {
    const { stdout } = await run('node', [
      'bin/chokepoint.js',
      'drill',
      '--json',
      '--url',
      h.url,
      '--token',
      ADMIN_TOKEN,
      ...args,
    ]);
    return JSON.parse(stdout) as Entry;
  };
  const ledgerOf = async (seat: string): Promise<Entry[]> =>
    (await h.api<{ entries: Entry[] }>('GET', `/api/ledger?scope=seat:${seat}&limit=1000`)).body.entries;

  const faces = [
    {
      provider: 'bedrock',
      face: 'POST /bedrock/model/us.anthropic.claude-sonnet-5-5/invoke',
      refusal: [400, 'ServiceQuotaExceededException'],
    },
    {
      provider: 'vertex',
      face: 'POST /vertex/projects/chokepoint-drill/locations/global/publishers/anthropic/models/claude-sonnet-5-5:rawPredict',
      refusal: [429, 'RESOURCE_EXHAUSTED'],
    },
  ] as const;

  for (const f of faces) {
    it(`refuses the runaway on the ${f.provider} face within its ceiling, in that face's error shape, and the kill switch bites there on the next request`, async () => {
      const billBefore = h.rt.emulator!.billing.total(f.provider);
      const report = await drill('--provider', f.provider);
      expect(report.provider).toBe(f.provider);
      expect(report.face).toBe(f.face);
      expect(report.passed).toBe(true);
      expect([report.refusalStatus, report.refusalErrorType]).toEqual(f.refusal);
      expect(report.refusalCode).toBe('budget_exhausted');
      expect(report.refusedAtCall).toBe(report.callsThrough + 1);
      expect(report.callsThrough).toBeGreaterThan(3);
      expect(report.withinCeiling).toBe(true);
      expect(Number(report.spentUsd)).toBeGreaterThan(0);
      expect(Number(report.spentUsd)).toBeLessThanOrEqual(0.5);
      expect(Number(report.unbounded.uncachedUsd)).toBeGreaterThan(Number(report.unbounded.cachedUsd));
      expect(report.killSwitch.tookEffectOnNextRequest).toBe(true);
      expect(report.killSwitch).toMatchObject({ status: 403, code: 'killed' });
      expect(report.drift.caught).toBe(true);

      // The report's ledger providers are the ledger's: every entry of the seat names the provider.
      expect(report.ledgerProviders).toEqual([
        { provider: f.provider, calls: report.callsThrough, costUsd: report.spentUsd },
      ]);
      const entries = await ledgerOf(report.seat);
      expect(entries.filter((e) => e.outcome === 'ok')).toHaveLength(report.callsThrough);
      expect(entries.filter((e) => e.outcome === 'refused').map((e) => e.code)).toEqual(['budget_exhausted']);
      expect(new Set(entries.map((e) => e.provider))).toEqual(new Set([f.provider]));
      const kill = await ledgerOf(`${report.seat}-k`);
      expect(kill.map((e) => [e.provider, e.outcome, e.code ?? null]).reverse()).toEqual([
        [f.provider, 'ok', null],
        [f.provider, 'refused', 'killed'],
      ]);
      // What the face let through reached the provider's own bill.
      expect(h.rt.emulator!.billing.total(f.provider)).toBeGreaterThan(billBefore);
    });
  }

  it('drills a Bedrock profile and a Vertex location other than the defaults', async () => {
    const eu = await drill('--provider', 'bedrock', '--geo', 'eu', '--model', 'claude-haiku-4-5');
    expect(eu.face).toBe('POST /bedrock/model/eu.anthropic.claude-haiku-4-5-20251001-v1:0/invoke');
    expect(eu.passed).toBe(true);
    // The unbounded estimate is priced as the face's calls are: a geographic profile at 1.1x global.
    const global = await drill('--provider', 'bedrock', '--geo', 'global', '--model', 'claude-haiku-4-5');
    expect(global.face).toBe('POST /bedrock/model/global.anthropic.claude-haiku-4-5-20251001-v1:0/invoke');
    expect(Number(eu.unbounded.uncachedUsd) / Number(global.unbounded.uncachedUsd)).toBeCloseTo(1.1, 3);
    const west = await drill('--provider', 'vertex', '--geo', 'europe-west1', '--model', 'claude-haiku-4-5');
    expect(west.face).toMatch(/locations\/europe-west1\/.*\/models\/claude-haiku-4-5@20251001:rawPredict$/);
    expect(west.passed).toBe(true);
    expect(west.ledgerProviders.map((p: Entry) => p.provider)).toEqual(['vertex']);
  });

  it('refuses an unknown provider or geography with a clear error (exit 2), before any call', async () => {
    const before = (await h.api<{ entries: Entry[] }>('GET', '/api/ledger?limit=1000')).body.entries.length;
    const bad = await drill('--provider', 'azure').catch((e) => e);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain(
      '--provider: unknown provider "azure" (expected one of anthropic, bedrock, vertex)',
    );
    const geo = await drill('--provider', 'bedrock', '--geo', 'mars').catch((e) => e);
    expect(geo.code).toBe(2);
    expect(geo.stderr).toMatch(/--geo: Bedrock has no profile prefix "mars" \(expected one of us, eu/);
    const after = (await h.api<{ entries: Entry[] }>('GET', '/api/ledger?limit=1000')).body.entries.length;
    expect(after).toBe(before);
  });

  it('explains --provider and each face in --help', async () => {
    const { stdout } = await run('node', ['bin/chokepoint.js', 'drill', '--help']);
    expect(stdout).toContain('--provider P');
    expect(stdout).toContain('/bedrock/model/<geo>.anthropic.<model>/invoke');
    expect(stdout).toContain(':rawPredict');
    expect(stdout).toContain('ServiceQuotaExceededException');
    expect(stdout).toContain('RESOURCE_EXHAUSTED');
  });
});

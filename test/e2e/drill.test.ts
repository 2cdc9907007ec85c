import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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

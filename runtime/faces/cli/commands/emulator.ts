import { DEFAULT_API_KEY, randomAdminKey } from '../../../../adapters/emulator/keys.ts';
import type { Command } from '../command.ts';
import { CliError } from '../command.ts';

export const emulatorCommand: Command = {
  name: 'emulator',
  summary: 'run the Anthropic API emulator as a standalone server',
  help: `Usage: chokepoint emulator [--port N] [--host H] [--latency MS] [--keep-calls N]

Serves the in-repo Anthropic Messages API emulator: /v1/messages (streaming too),
/v1/messages/count_tokens, prompt-caching accounting, scripted replies (/_emulator/script),
injected faults (/_emulator/faults), its billing record (/_emulator/billing) and Admin-API
shaped cost and usage reports (/v1/organizations/cost_report, .../usage_report/messages).

Options:
  --port N       port (default 8788; 0 picks a free port)
  --host H       address to bind (default 127.0.0.1)
  --latency MS   added latency per request (default 0)
  --api-key K    API key to accept (default ${DEFAULT_API_KEY})
  --admin-key K  Admin API key for the reports and /_emulator/* (default: random per start,
                 printed at start-up as "admin key ...")
  --keep-calls N how many recent calls the billing record lists call by call (default 100000;
                 totals and reports count every call): the benchmarks keep 1000, so an emulator
                 serving millions of calls stays as fast at the end of a run as at its start`,
  options: {
    port: { type: 'string' },
    host: { type: 'string' },
    latency: { type: 'string' },
    'api-key': { type: 'string' },
    'admin-key': { type: 'string' },
    'keep-calls': { type: 'string' },
  },
  async run({ values, out }) {
    const port = Number(values.port ?? 8788);
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
      throw new CliError(`--port: expected a port number 0-65535, got ${JSON.stringify(values.port)}`);
    }
    const latencyMs = Number(values.latency ?? 0);
    if (!Number.isFinite(latencyMs) || latencyMs < 0) {
      throw new CliError(`--latency: expected milliseconds >= 0, got ${JSON.stringify(values.latency)}`);
    }
    const keep = Number(values['keep-calls'] ?? 100_000);
    if (!Number.isInteger(keep) || keep < 1) {
      throw new CliError(
        `--keep-calls: expected a whole number >= 1, got ${JSON.stringify(values['keep-calls'])}`,
      );
    }
    const { createEmulator } = await import('../../../../adapters/emulator/index.ts');
    const emulator = createEmulator({
      apiKey: (values['api-key'] as string | undefined) ?? DEFAULT_API_KEY,
      latencyMs,
      maxBillingEntries: keep,
      adminKey: (values['admin-key'] as string | undefined) || randomAdminKey(),
    });
    const l = await emulator.listen({ port, host: (values.host as string | undefined) ?? '127.0.0.1' });
    out(`listening on ${l.url}`);
    out('  EMULATOR: an Anthropic Messages API stand-in; no real model is called');
    out(`  admin key ${emulator.adminKey}   (x-api-key for /_emulator/billing and the cost/usage reports)`);
    await new Promise<void>((resolve) => {
      const stop = () => void l.close().then(resolve);
      process.once('SIGTERM', stop);
      process.once('SIGINT', stop);
    });
    return 0;
  },
};

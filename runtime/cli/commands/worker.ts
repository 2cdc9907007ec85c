import { openApprovals } from '../../../approvals/open.ts';
import { loadConfig } from '../../config/load.ts';
import { createLogger } from '../../log.ts';
import { openRuntime } from '../../runtime.ts';
import { openRunHost } from '../../workflows/open.ts';
import type { Command } from '../command.ts';
import { CliError } from '../command.ts';

export const workerCommand: Command = {
  name: 'worker',
  summary: 'work on workflow runs without the HTTP server (Redis backend)',
  help: `Usage: chokepoint worker [--config FILE] [--concurrency N]

Takes runs from the \`runs\` queue on Redis (BullMQ) and runs them: new runs, runs resumed by an
approval, and runs whose worker died (BullMQ's stalled-job check hands them on after the lock,
workflows.lease, lapses; the journal means nothing billed is billed again). Run any number of
workers and servers against one Redis (REDIS_URL); each loads the same workflows folder.

Options:
  --config FILE    config file (default ./chokepoint.config.yaml, or $CHOKEPOINT_CONFIG)
  --concurrency N  runs this worker works on at once (default workers.concurrency, 32)

Stops gracefully on SIGTERM/SIGINT: takes no new work, hands the runs it holds back to the queue
(another worker resumes them from their last step), then exits.`,
  options: {
    config: { type: 'string' },
    concurrency: { type: 'string' },
  },
  async run({ values, out }) {
    const config = loadConfig({ path: values.config as string | undefined });
    if (config.store.backend !== 'redis') {
      throw new CliError(
        'worker needs the Redis backend: set REDIS_URL (on the embedded backend, runs run inside `chokepoint serve`)',
      );
    }
    if (values.concurrency !== undefined) {
      const n = Number(values.concurrency);
      if (!Number.isInteger(n) || n < 1) {
        throw new CliError(
          `--concurrency: expected a whole number of runs ≥ 1, got ${JSON.stringify(values.concurrency)}`,
        );
      }
      config.workers.concurrency = n;
    }
    const log = createLogger({ level: config.logLevel });
    const rt = await openRuntime(config, log);
    try {
      const host = await openRunHost(rt, { recover: false });
      await openApprovals(rt, host, { workers: true });
      const listed = host.workflows();
      out(`worker ${host.executor.owner}: ${config.workers.concurrency} runs at once`);
      out(`  workflows    ${listed.workflows.map((w) => `${w.id}@${w.version}`).join(', ') || '(none)'}`);
      for (const bad of listed.invalid)
        out(`  INVALID      ${bad.file}: ${bad.problems.map((p) => `${p.field}: ${p.message}`).join('; ')}`);
      out(`  store        redis (${config.store.prefix})`);
    } catch (err) {
      await rt.close();
      throw err;
    }
    await new Promise<void>((resolve) => {
      const stop = async (signal: string) => {
        process.off('SIGTERM', onTerm);
        process.off('SIGINT', onInt);
        log.info('worker stopping', { signal });
        await rt.approvals?.close();
        await rt.runs?.close();
        await rt.close();
        log.info('stopped');
        resolve();
      };
      const onTerm = () => void stop('SIGTERM');
      const onInt = () => void stop('SIGINT');
      process.on('SIGTERM', onTerm);
      process.on('SIGINT', onInt);
    });
    return 0;
  },
};

import type { Services } from '../../../compose.ts';
import type { Listening } from '../../http/listen.ts';
import type { Command } from '../command.ts';
import { CliError } from '../command.ts';

export const workerCommand: Command = {
  name: 'worker',
  summary: 'work on workflow runs without the HTTP server (Redis backend)',
  help: `Usage: chokepoint worker [--config FILE] [--concurrency N] [--metrics-port N] [--metrics-host H]
                         [--shutdown-timeout 15s]

Takes runs from the \`runs\` queue on Redis (BullMQ) and runs them: new runs, runs resumed by an
approval, and runs whose worker died (BullMQ's stalled-job check hands them on after the lock,
workflows.lease, lapses; the journal means nothing billed is billed again). Run any number of
workers and servers against one Redis (REDIS_URL); each loads the same workflows folder.

Options:
  --config FILE    config file (default ./chokepoint.config.yaml, or $CHOKEPOINT_CONFIG)
  --concurrency N  runs this worker works on at once (default workers.concurrency, 32)
  --metrics-port N serve this worker's Prometheus metrics at http://H:N/metrics (0 picks a free
                   port; default: none). The model and tool calls of the runs a worker works on
                   are counted in that worker, so scrape every worker as well as every server.
                   Same auth as serve's /metrics (an operator token, unless metrics.public).
  --metrics-host H address for --metrics-port (default server.host, 127.0.0.1)
  --shutdown-timeout D  how long a graceful stop may take (default 15s, or
                   $CHOKEPOINT_SHUTDOWN_TIMEOUT); past it the worker logs what did not close
                   and exits 1

Prices and routing reload without a restart when the config file changes or on SIGHUP (as in
\`chokepoint serve\`); models past or near their end of life that the config names are flagged
at start.

Stops gracefully on SIGTERM/SIGINT: takes no new work, hands the runs it holds back to the queue
(another worker resumes them from their last step), then exits (exit 1 past the shutdown
deadline, naming what did not close). Redis unreachable at start: one line, exit 1.`,
  options: {
    config: { type: 'string' },
    concurrency: { type: 'string' },
    'metrics-port': { type: 'string' },
    'metrics-host': { type: 'string' },
    'shutdown-timeout': { type: 'string' },
  },
  async run({ values, out }) {
    let metricsPort: number | undefined;
    if (values['metrics-port'] !== undefined) {
      metricsPort = Number(values['metrics-port']);
      if (!Number.isInteger(metricsPort) || metricsPort < 0 || metricsPort > 65535) {
        throw new CliError(
          `--metrics-port: expected a port number 0-65535, got ${JSON.stringify(values['metrics-port'])}`,
        );
      }
    }
    // The runtime's modules load here, not with the CLI: every other command starts without them.
    const { loadConfig } = await import('../../../config/load.ts');
    const { compose } = await import('../../../compose.ts');
    const { createLogger } = await import('../../../log.ts');
    const { endOfLifeLine } = await import('../../../pricing/lifecycle.ts');
    const { flagEndOfLife, watchConfig } = await import('../../../reload.ts');
    const { checkRedis, shutdownDeadline, stopOnSignal } = await import('../shutdown.ts');
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
    const deadline = shutdownDeadline(values['shutdown-timeout']);
    const log = createLogger({ level: config.logLevel });
    await checkRedis(config.store.redisUrl!);
    const rt = await compose(config, log, { workflows: { workers: true } });
    const host = rt.runs!;
    let metrics: Listening | undefined;
    let watcher: ReturnType<typeof watchConfig> | undefined;
    // Listening for SIGTERM before the banner: whoever reads the banner may signal at once.
    const stopped = stopOnSignal(
      [{ name: 'the metrics server', close: () => metrics?.close(1000) }, ...rt.shutdownSteps()],
      deadline,
      log,
      (signal) => {
        log.info('worker stopping', { signal, deadline_ms: deadline });
        watcher?.close();
      },
    );
    try {
      const listed = host.workflows();
      out(`worker ${host.executor.owner}: ${config.workers.concurrency} runs at once`);
      out(`  workflows    ${listed.workflows.map((w) => `${w.id}@${w.version}`).join(', ') || '(none)'}`);
      for (const bad of listed.invalid)
        out(`  INVALID      ${bad.file}: ${bad.problems.map((p) => `${p.field}: ${p.message}`).join('; ')}`);
      if (metricsPort !== undefined) {
        const host = (values['metrics-host'] as string | undefined) ?? config.server.host;
        metrics = await serveMetrics(rt, metricsPort, host);
        out(`  metrics      ${metrics.url}/metrics`);
      }
      out(`  store        redis (${config.store.prefix})`);
      for (const [i, e] of flagEndOfLife(rt).entries())
        out(`  ${i === 0 ? 'models' : ''.padEnd(6)}       ${endOfLifeLine(e)}`);
      // The runs a worker works on price their calls here: prices and routing reload here too.
      watcher = watchConfig(rt);
    } catch (err) {
      watcher?.close();
      await metrics?.close(0);
      await rt.close();
      throw err;
    }
    return stopped;
  },
};

/** `/metrics` (and `/healthz`) of a worker, on its own port: the worker has no other HTTP face. */
async function serveMetrics(rt: Services, port: number, host: string): Promise<Listening> {
  const { getRequestListener } = await import('@hono/node-server');
  const { Hono } = await import('hono');
  const { listen } = await import('../../http/listen.ts');
  const { metricsRoute } = await import('../../http/metrics-route.ts');
  const app = new Hono();
  app.get('/healthz', (c) => c.json({ ok: true }));
  app.route('/', metricsRoute(rt));
  return listen(getRequestListener(app.fetch), { port, host });
}

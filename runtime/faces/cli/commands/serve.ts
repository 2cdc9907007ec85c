import type { Command } from '../command.ts';
import { CliError } from '../command.ts';

export const serveCommand: Command = {
  name: 'serve',
  summary: 'start the HTTP server: gateway, operator API, inbox, MCP',
  help: `Usage: chokepoint serve [--port N] [--host H] [--config FILE] [--watch] [--no-workers]
                        [--shutdown-timeout 15s]

Starts Chokepoint: /v1/messages (Anthropic-compatible gateway), /api (operator API), / (inbox),
/mcp, /healthz and /readyz. Uses the embedded SQLite store unless REDIS_URL is set, and the
in-process Anthropic emulator unless ANTHROPIC_API_KEY is set.

Options:
  --port N       port to listen on (default 8787, or $CHOKEPOINT_PORT; 0 picks a free port)
  --host H       address to bind (default 127.0.0.1)
  --config FILE  config file (default ./chokepoint.config.yaml, or $CHOKEPOINT_CONFIG)
  --watch        reload the workflows folder when a file changes (development)
  --no-workers   do not work on runs here (Redis backend: leave them to \`chokepoint worker\`
                 processes); this server still starts runs and takes decisions
  --shutdown-timeout D  how long a graceful stop may take (default 15s, or
                 $CHOKEPOINT_SHUTDOWN_TIMEOUT); past it the process logs what did not close
                 and exits 1

Loads every workflow in the workflows folder (workflows.dir, or $CHOKEPOINT_WORKFLOWS_DIR): a
broken file is listed with its problems and the others run. Runs a crash left behind resume
from their last step once their lease lapses (workflows.lease, 30 s). Suspended runs wait in the
approval queue (\`chokepoint approvals\`, /api/approvals); on Redis, starts and resumes go to
whichever worker (serve or \`chokepoint worker\`) is free.

Stops gracefully on SIGTERM/SIGINT: live runs are handed back (their in-flight calls aborted and
released) to resume on the next start, in-flight requests finish, then the store is closed — or,
past the shutdown deadline (a store that went away), exits 1 naming what did not close. With
REDIS_URL set and Redis unreachable at start it exits 1 with one line saying so.

Prices and routing reload without a restart: when the config file changes (checked every
second), on SIGHUP, or with \`POST /api/prices/reload\`. The whole file is validated; an invalid
one is logged with the field and the old prices and routing stay. Other settings need a restart.
Models the routing classes or workflows name that are past or within 60 days of their end of
life are flagged at start (a warning each, and a \`models\` line below).`,
  options: {
    port: { type: 'string' },
    host: { type: 'string' },
    config: { type: 'string' },
    watch: { type: 'boolean' },
    'no-workers': { type: 'boolean' },
    'shutdown-timeout': { type: 'string' },
  },
  async run({ values, out }) {
    let port: number | undefined;
    if (values.port !== undefined) {
      port = Number(values.port);
      if (!Number.isInteger(port) || port < 0 || port > 65535) {
        throw new CliError(`--port: expected a port number 0-65535, got ${JSON.stringify(values.port)}`);
      }
    }
    // The server's modules load here, not with the CLI: every other command starts without them.
    const { loadConfig } = await import('../../../config/load.ts');
    const { createLogger } = await import('../../../log.ts');
    const { endOfLifeLine } = await import('../../../pricing/lifecycle.ts');
    const { flagEndOfLife, watchConfig } = await import('../../../reload.ts');
    const { startServer } = await import('../../http/server.ts');
    const { checkBackend, shutdownDeadline, stopOnSignal } = await import('../shutdown.ts');
    const config = loadConfig({
      path: values.config as string | undefined,
      overrides: { port, host: values.host as string | undefined },
    });
    const deadline = shutdownDeadline(values['shutdown-timeout']);
    const log = createLogger({ level: config.logLevel });
    await checkBackend(config.store);
    const noWorkers = values['no-workers'] === true;
    if (noWorkers && config.store.backend !== 'redis') {
      throw new CliError(
        '--no-workers needs the Redis backend (set REDIS_URL): on the embedded backend runs only run inside serve',
      );
    }
    const server = await startServer(config, log, {
      watch: values.watch === true || undefined,
      workers: noWorkers ? false : undefined,
    });
    const base = server.url;
    const { rt } = server;
    const flagged = flagEndOfLife(rt);
    const watcher = watchConfig(rt);
    // Listening for SIGTERM before the banner: whoever reads the banner may signal at once (a
    // signal that came between the banner and the handler would kill the process outright).
    const stopped = stopOnSignal(server.shutdownSteps(), deadline, log, (signal) => {
      watcher.close();
      log.info('shutting down', { signal, deadline_ms: deadline });
    });
    out(`listening on ${base}`);
    out(`  inbox        ${base}/   (log in with an operator token)`);
    out(`  operator API ${base}/api`);
    out(`  gateway      ${base}/v1/messages   (point ANTHROPIC_BASE_URL here, a cp_ key as the API key)`);
    out(`  OpenAI       ${base}/v1   (chat/completions, responses, embeddings: an OpenAI SDK's baseURL)`);
    out(
      `  Bedrock      ${base}/bedrock   (ANTHROPIC_BEDROCK_BASE_URL, or an AWS SDK endpoint; cp_ key as Bearer)`,
    );
    out(`  Vertex       ${base}/vertex   (ANTHROPIC_VERTEX_BASE_URL; cp_ key as Bearer)`);
    out(`  MCP          ${base}/mcp   (streamable HTTP, operator token as Bearer; stdio: chokepoint mcp)`);
    if (server.workflows) {
      const { workflows, invalid } = server.workflows;
      out(
        `  workflows    ${workflows.length ? workflows.join(', ') : '(none)'}   (${config.workflowsDir}${values.watch ? ', watching' : ''})`,
      );
      for (const bad of invalid) out(`  INVALID      ${bad}`);
      out(
        `  workers      ${noWorkers || !config.workers.enabled ? 'off (runs go to `chokepoint worker` processes)' : `${config.workers.concurrency} runs at once`}`,
      );
    }
    out(
      `  store        ${config.store.backend}${config.store.backend === 'embedded' ? ` (${config.dataDir})` : ''}`,
    );
    out(
      `  provider     ${config.provider.kind}${config.provider.kind === 'emulator' ? '  (EMULATOR: no real model is called, no real money is spent)' : ''}`,
    );
    const more = rt.providers.names().filter((n) => n !== rt.providers.defaultName);
    if (more.length) {
      out(
        `  providers    ${more.map((n) => `${n} (${rt.providers.get(n)!.kind}${rt.emulatorUrl && !config.providers[n] ? ', on the emulator' : ''})`).join(', ')}`,
      );
    }
    // The in-process emulator's admin key is random per start: its billing record and reports.
    const emulatorKey = rt.emulatorAdminKey;
    if (rt.emulatorUrl && emulatorKey)
      out(
        `  emulator     ${rt.emulatorUrl}   (admin key ${emulatorKey}: /_emulator/billing, cost and usage reports)`,
      );
    out(
      `  prices       ${rt.prices.current(rt.now()).length} models; prices and routing reload when ${watcher.file} changes, or on SIGHUP`,
    );
    if (!youngGenerationSet(process.execArgv, process.env.NODE_OPTIONS)) {
      out(
        '  node         16 MB young generation: under load start with NODE_OPTIONS=--max-semi-space-size=64 (as npm start does; README, Install)',
      );
    }
    for (const [i, e] of flagged.entries())
      out(`  ${i === 0 ? 'models' : ''.padEnd(6)}       ${endOfLifeLine(e)}`);
    if (server.createdAdminToken)
      out(`  admin token  ${server.createdAdminToken}   (shown once; also in ${server.adminTokenFile})`);
    else if (server.adminTokenFile) out(`  admin token  in ${server.adminTokenFile}`);
    else out('  admin token  from CHOKEPOINT_ADMIN_TOKEN');

    return stopped;
  },
};

/** Whether node was started with a young-generation size of its own (`--max-semi-space-size`, on
 * its command line or in NODE_OPTIONS): node reads it only at start, so serve can only say so. */
export function youngGenerationSet(execArgv: readonly string[], nodeOptions: string | undefined): boolean {
  const named = (a: string) => a.startsWith('--max-semi-space-size') || a.startsWith('--max_semi_space_size');
  return execArgv.some(named) || (nodeOptions ?? '').split(/\s+/).some(named);
}

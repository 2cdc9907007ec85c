import { compose, type Services, type ShutdownStep } from '../../compose.ts';
import type { Config } from '../../config/load.ts';
import type { Logger } from '../../log.ts';
import { createApp } from './app.ts';
import { listen } from './listen.ts';

export interface RunningServer {
  url: string;
  /** The services it serves (serve watches the config file for them and flags end-of-life models). */
  rt: Services;
  port: number;
  createdAdminToken?: string;
  adminTokenFile?: string;
  /** What the workflows folder held at start: `id@version` names and one line per broken file. */
  workflows?: { workflows: string[]; invalid: string[] };
  /** The steps of shutdown, in order, the HTTP server's among them (for a deadline naming the slow one). */
  shutdownSteps(): ShutdownStep[];
  close(): Promise<void>;
}

/** Opens the runtime (store, provider, operators) and serves every face of it on one port. */
export async function startServer(
  config: Config,
  log: Logger,
  opts: { watch?: boolean; workers?: boolean } = {},
): Promise<RunningServer> {
  const rt = await compose(config, log, { workflows: { watch: opts.watch, workers: opts.workers } });
  const listed = rt.runs!.workflows();
  const workflows = {
    workflows: listed.workflows.map((w) => `${w.id}@${w.version}`),
    invalid: listed.invalid.map(
      (b) => `${b.file}: ${b.problems.map((p) => `${p.field}: ${p.message}`).join('; ')}`,
    ),
  };
  let l: Awaited<ReturnType<typeof listen>>;
  try {
    l = await listen(createApp(rt), { port: config.server.port, host: config.server.host });
  } catch (err) {
    await rt.close();
    throw err;
  }
  let httpClosed: Promise<void> | undefined;
  const steps = (): ShutdownStep[] => {
    const [...all] = rt.shutdownSteps();
    // The HTTP server closes once the runs stopped (their last events still reach live views),
    // before the store.
    all.splice(all.length - 1, 0, { name: 'the HTTP server', close: () => (httpClosed ??= l.close()) });
    return all;
  };
  log.info('listening', { url: l.url, store: config.store.backend, provider: config.provider.kind });
  return {
    url: l.url,
    port: l.port,
    rt,
    createdAdminToken: rt.operatorSetup.createdAdminToken,
    adminTokenFile: rt.operatorSetup.adminTokenFile,
    workflows,
    shutdownSteps: steps,
    async close() {
      for (const step of steps()) await step.close();
    },
  };
}

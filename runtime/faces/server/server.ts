import { openApprovals } from '../../../approvals/open.ts';
import type { Config } from '../../config/load.ts';
import type { Logger } from '../../log.ts';
import { openRuntime, type Runtime } from '../../runtime.ts';
import { openRunHost } from '../../workflows/open.ts';
import { createApp } from './app.ts';
import { listen } from './listen.ts';

export interface RunningServer {
  url: string;
  /** The runtime it serves (serve watches the config file for it and flags end-of-life models). */
  rt: Runtime;
  port: number;
  createdAdminToken?: string;
  adminTokenFile?: string;
  /** What the workflows folder held at start: `id@version` names and one line per broken file. */
  workflows?: { workflows: string[]; invalid: string[] };
  close(): Promise<void>;
}

/** Opens the runtime (store, provider, operators) and serves every face of it on one port. */
export async function startServer(
  config: Config,
  log: Logger,
  opts: { watch?: boolean; workers?: boolean } = {},
): Promise<RunningServer> {
  const rt = await openRuntime(config, log);
  let workflows: RunningServer['workflows'];
  try {
    // Recovery is the runs queue's: at start every running run nobody works on is queued again,
    // and on Redis BullMQ's stalled-job check hands a dead worker's runs on.
    const host = await openRunHost(rt, { watch: opts.watch, recover: false });
    await openApprovals(rt, host, { workers: opts.workers });
    const listed = host.workflows();
    workflows = {
      workflows: listed.workflows.map((w) => `${w.id}@${w.version}`),
      invalid: listed.invalid.map(
        (b) => `${b.file}: ${b.problems.map((p) => `${p.field}: ${p.message}`).join('; ')}`,
      ),
    };
  } catch (err) {
    await rt.close();
    throw err;
  }
  const handler = createApp(rt);
  const l = await listen(handler, { port: config.server.port, host: config.server.host });
  log.info('listening', { url: l.url, store: config.store.backend, provider: config.provider.kind });
  return {
    url: l.url,
    port: l.port,
    rt,
    createdAdminToken: rt.operatorSetup.createdAdminToken,
    adminTokenFile: rt.operatorSetup.adminTokenFile,
    workflows,
    async close() {
      // Runs first: in-flight calls are aborted and released, live runs handed back to the store
      // (on Redis, to the runs queue for another worker).
      await rt.approvals?.close();
      await rt.runs?.close();
      await l.close();
      await rt.close();
    },
  };
}

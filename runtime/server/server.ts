import type { Config } from '../config/load.ts';
import type { Logger } from '../log.ts';
import { openRuntime } from '../runtime.ts';
import { openRunHost } from '../workflows/open.ts';
import { createApp } from './app.ts';
import { listen } from './listen.ts';

export interface RunningServer {
  url: string;
  port: number;
  createdAdminToken?: string;
  adminTokenFile?: string;
  close(): Promise<void>;
}

/** Opens the runtime (store, provider, operators) and serves every face of it on one port. */
export async function startServer(
  config: Config,
  log: Logger,
  opts: { watch?: boolean } = {},
): Promise<RunningServer> {
  const rt = await openRuntime(config, log);
  try {
    await openRunHost(rt, { watch: opts.watch });
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
    createdAdminToken: rt.operatorSetup.createdAdminToken,
    adminTokenFile: rt.operatorSetup.adminTokenFile,
    async close() {
      // Runs first: in-flight calls are aborted and released, live runs handed back to the store.
      await rt.runs?.close();
      await l.close();
      await rt.close();
    },
  };
}

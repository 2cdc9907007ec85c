import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Listening {
  server: Server;
  url: string;
  port: number;
  /** Stops accepting, lets in-flight requests finish (up to graceMs), then closes what is left. */
  close(graceMs?: number): Promise<void>;
}

/**
 * Starts a node:http server with keep-alive tuned for a proxy. Resolves once it accepts
 * connections. `port: 0` picks a free port.
 */
export function listen(
  handler: (req: IncomingMessage, res: ServerResponse) => void,
  opts: { port: number; host: string },
): Promise<Listening> {
  // Node binds every interface when host is "": that must be asked for by name ("0.0.0.0").
  if (!opts.host?.trim())
    return Promise.reject(
      new Error('listen: empty host; use "127.0.0.1" (the default) or "0.0.0.0" for every interface'),
    );
  const server = createServer({ keepAlive: true, keepAliveTimeout: 65_000, headersTimeout: 66_000 }, handler);
  server.keepAliveTimeout = 65_000;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject);
      const addr = server.address() as AddressInfo;
      const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
      resolve({
        server,
        port: addr.port,
        url: `http://${host}:${addr.port}`,
        close: (graceMs = 10_000) =>
          new Promise<void>((done) => {
            const timer = setTimeout(() => server.closeAllConnections(), graceMs);
            timer.unref();
            server.close(() => {
              clearTimeout(timer);
              done();
            });
            server.closeIdleConnections();
          }),
      });
    });
  });
}

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { protocolSwitch } from '../../../adapters/http/h2c.ts';
import { FastH1, type FastOptions, type FastRoute } from '../gateway/fast-h1.ts';

/** A request handler, and the requests it also serves without node:http's objects (runtime/faces/gateway/fast-h1.ts). */
export type AppHandler = ((req: IncomingMessage, res: ServerResponse) => void) & {
  fast?: { route: FastRoute; options: FastOptions };
};

/** How long a kept connection may idle, and a request's head take (both servers alike). */
const KEEP_ALIVE_MS = 65_000;
const HEADERS_MS = 66_000;

export interface Listening {
  /** The HTTP/1.1 server (the front listener hands it every HTTP/1.1 connection). */
  server: Server;
  url: string;
  port: number;
  /** The gateway's own HTTP/1.1 path, when the handler has one (its counts: served, handed off). */
  fast?: FastH1;
  /** Stops accepting, lets in-flight requests finish (up to graceMs), then closes what is left. */
  close(graceMs?: number): Promise<void>;
}

/**
 * Starts a node:http server with keep-alive tuned for a proxy, and cleartext HTTP/2 on the same
 * port (the AWS SDK's Bedrock client speaks only HTTP/2; node's compatibility API serves it with
 * the same handler). Resolves once it accepts connections. `port: 0` picks a free port.
 */
export function listen(handler: AppHandler, opts: { port: number; host: string }): Promise<Listening> {
  // Node binds every interface when host is "": that must be asked for by name ("0.0.0.0").
  if (!opts.host?.trim())
    return Promise.reject(
      new Error('listen: empty host; use "127.0.0.1" (the default) or "0.0.0.0" for every interface'),
    );
  const server = createServer(
    { keepAlive: true, keepAliveTimeout: KEEP_ALIVE_MS, headersTimeout: HEADERS_MS },
    handler,
  );
  server.keepAliveTimeout = KEEP_ALIVE_MS;
  // The gateway's hot path on HTTP/1.1 is read and answered in bytes (runtime/faces/gateway/fast-h1.ts); every other
  // request, and its connection from there on, is node:http's.
  const fast = handler.fast
    ? new FastH1(server, handler.fast.route, {
        keepAliveTimeoutMs: KEEP_ALIVE_MS,
        headersTimeoutMs: HEADERS_MS,
        ...handler.fast.options,
      })
    : undefined;
  const front = protocolSwitch(server, handler, fast && ((socket, first) => fast.accept(socket, first)));
  const closeIdle = () => {
    fast?.closeIdle();
    server.closeIdleConnections();
  };
  // What the HTTP/1.1 server's users ask of it (is it still listening?) is the front's state.
  Object.defineProperty(server, 'listening', { get: () => front.server.listening });
  // A socket's `server` is the front listener: it lets idle HTTP/1.1 connections go like node:http's.
  Object.assign(front.server, { closeIdleConnections: closeIdle });
  return new Promise((resolve, reject) => {
    front.server.once('error', reject);
    front.server.listen(opts.port, opts.host, () => {
      front.server.off('error', reject);
      const addr = front.server.address() as AddressInfo;
      const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
      resolve({
        server,
        fast,
        port: addr.port,
        url: `http://${host}:${addr.port}`,
        close: (graceMs = 10_000) =>
          new Promise<void>((done) => {
            const timer = setTimeout(() => front.destroyAll(), graceMs);
            timer.unref();
            front.server.close(() => {
              clearTimeout(timer);
              done();
            });
            closeIdle();
          }),
      });
    });
  });
}

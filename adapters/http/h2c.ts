/**
 * HTTP/1.1 and cleartext HTTP/2 (h2c, prior knowledge) on one port: the emulator's listener and
 * the gateway's (its Bedrock face).
 *
 * Why both: @aws-sdk/client-bedrock-runtime sends every call over HTTP/2 (its default request
 * handler is `NodeHttp2Handler`), and real Bedrock Runtime serves it; on an `http://` endpoint the
 * SDK speaks h2c. The Anthropic SDKs and most clients speak HTTP/1.1. The first bytes of a
 * connection say which: HTTP/2 opens with the preface `PRI * HTTP/2.0`.
 */
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { createServer as createHttp2Server, type Http2Session } from 'node:http2';
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import { Duplex } from 'node:stream';
import { getRequestListener } from '@hono/node-server';

/**
 * The socket as a stream that starts with the bytes already read from it. Node's HTTP/2 server
 * reads a plain socket's handle directly, past anything unshifted back into its JS buffer; given
 * a generic Duplex it reads through the stream instead.
 */
function replaying(socket: Socket, first: Buffer): Duplex {
  const wrapper = new Duplex({
    read() {
      socket.resume();
    },
    write(chunk, _enc, done) {
      socket.write(chunk, done);
    },
    final(done) {
      socket.end();
      done();
    },
    destroy(err, done) {
      socket.destroy();
      done(err);
    },
  });
  wrapper.push(first);
  socket.on('data', (d) => {
    if (!wrapper.push(d)) socket.pause();
  });
  socket.on('end', () => wrapper.push(null));
  socket.on('close', () => wrapper.destroy());
  socket.on('error', (e) => wrapper.destroy(e));
  return wrapper;
}

/**
 * One port for two protocols: every connection's first bytes say which (HTTP/2 opens with the
 * preface `PRI * HTTP/2.0`), and it is handed to `h1` or to an HTTP/2 server running `handler`
 * (node's compatibility API: the same req/res handler serves both). The front server is what
 * listens; `destroyAll` ends every connection and session.
 */
export function protocolSwitch(
  h1: Server,
  handler: (req: IncomingMessage, res: ServerResponse) => void,
  /** Takes an HTTP/1.1 connection (and its first bytes) in place of `h1`, which it may hand it to. */
  fast?: (socket: Socket, first: Buffer) => void,
): { server: NetServer; destroyAll(): void } {
  const h2 = createHttp2Server(handler as never);
  const sockets = new Set<Socket>();
  const sessions = new Set<Http2Session>();
  h2.on('session', (s) => {
    sessions.add(s);
    s.once('close', () => sessions.delete(s));
  });
  // As node:http's own listener does: no Nagle delay (a streamed answer is many small writes) and
  // TCP keep-alive on every accepted socket.
  const server = createNetServer({ noDelay: true, keepAlive: true }, (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    // A connection reset before its first bytes (no protocol has it yet) must not take the process.
    socket.on('error', noop);
    socket.once('data', (first: Buffer) => {
      socket.pause();
      if (first.subarray(0, 3).toString('latin1') === 'PRI') {
        h2.emit('connection', replaying(socket, first));
      } else if (fast) {
        fast(socket, first);
        socket.resume();
      } else {
        socket.unshift(first);
        h1.emit('connection', socket);
        socket.resume();
      }
    });
  });
  // The HTTP/1.1 server never listens itself; its connection tracking (idle connections, header
  // and request timeouts) starts on its own 'listening' event, so it hears the front's.
  server.once('listening', () => h1.emit('listening'));
  return {
    server,
    destroyAll() {
      for (const s of sessions) s.destroy();
      h1.closeAllConnections();
      for (const s of sockets) s.destroy();
    },
  };
}

const noop = () => {};

export interface Served {
  port: number;
  close(): Promise<void>;
}

/** Serves `fetch` on `host:port` (0: a free port) over HTTP/1.1 and h2c, keep-alive on. */
export function listenDual(
  fetch: (req: Request) => Response | Promise<Response>,
  port: number,
  host: string,
): Promise<Served> {
  const listener = getRequestListener(fetch);
  const h1 = createHttpServer(listener);
  h1.keepAliveTimeout = 65_000;
  const { server, destroyAll } = protocolSwitch(h1, listener);
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      const address = server.address();
      resolve({
        port: typeof address === 'object' && address ? address.port : port,
        close: () =>
          new Promise<void>((done, fail) => {
            server.close((err) => (err ? fail(err) : done()));
            destroyAll();
          }),
      });
    });
  });
}

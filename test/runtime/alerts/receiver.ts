import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type Server } from 'node:http';

/** One POST a receiver took: its path, headers and raw body. */
export interface Received {
  path: string;
  headers: Record<string, string | string[] | undefined>;
  raw: string;
  json: Record<string, any>;
}

/**
 * A real HTTP receiver on localhost for alert deliveries. `answer` decides each response's status
 * (default 200); every request is kept, in order.
 */
export async function startReceiver(answer: (r: Received, n: number) => number = () => 200) {
  const received: Received[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      const r: Received = { path: req.url ?? '', headers: req.headers, raw, json: JSON.parse(raw || '{}') };
      received.push(r);
      res.writeHead(answer(r, received.length));
      res.end('ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    received,
    at: (path: string) => received.filter((r) => r.path === path),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/**
 * Checks `x-chokepoint-signature: t=<s>,v1=<hex>` as the README tells a receiver to: HMAC-SHA256
 * of `<t>.<raw body>` with the shared secret, and `t` within five minutes of now.
 */
export function verifySignature(r: Received, secret: string, now = Date.now()): boolean {
  const header = String(r.headers['x-chokepoint-signature'] ?? '');
  const m = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(header);
  if (!m) return false;
  const t = Number(m[1]);
  if (Math.abs(now / 1000 - t) > 300) return false;
  const expected = createHmac('sha256', secret).update(`${m[1]}.${r.raw}`).digest();
  return timingSafeEqual(expected, Buffer.from(m[2]!, 'hex'));
}

// The limit for our design: a bare pass-through proxy on the same HTTP stack the issue names
// (Hono + @hono/node-server + fetch/undici), no enforcement: body in, upstream call, body streamed
// back. usage: node bin/run-ts.js bench/bare-hono-proxy.ts <upstream-url>
import { serve } from '@hono/node-server';
import { Hono } from 'hono';

const upstream = (process.argv[2] ?? 'http://127.0.0.1:8788').replace(/\/$/, '');
const app = new Hono();
app.post('/v1/*', async (c) => {
  const res = await fetch(`${upstream}${c.req.path}`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'anthropic-version': '2023-06-01',
      'x-api-key': 'sk-emulator-local',
    },
    body: await c.req.arrayBuffer(),
  });
  const headers = new Headers(res.headers);
  headers.delete('content-length');
  headers.delete('content-encoding');
  headers.delete('transfer-encoding');
  headers.delete('connection');
  headers.delete('keep-alive');
  return new Response(res.body, { status: res.status, headers });
});
serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, (info) => {
  process.stdout.write(`listening on http://127.0.0.1:${info.port}\n`);
});

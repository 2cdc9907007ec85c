// The baseline for gateway benchmarks: a bare node:http pass-through proxy with a keep-alive
// agent, no enforcement. usage: node bin/run-ts.js bench/bare-proxy.ts <upstream-url>
import { Agent, createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';

const upstream = new URL(process.argv[2] ?? 'http://127.0.0.1:8788');
const agent = new Agent({ keepAlive: true, maxSockets: 256 });
const server = createServer({ keepAlive: true }, (req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks);
    const up = request(
      {
        host: upstream.hostname,
        port: upstream.port,
        path: req.url,
        method: req.method,
        agent,
        headers: {
          'content-type': 'application/json',
          'content-length': body.length,
          'anthropic-version': '2023-06-01',
          'x-api-key': 'sk-emulator-local',
        },
      },
      (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers);
        r.pipe(res);
      },
    );
    up.on('error', () => res.destroy());
    up.end(body);
  });
});
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`listening on http://127.0.0.1:${(server.address() as AddressInfo).port}\n`);
});
// A normal exit on a signal, so `--cpu-prof` writes its profile (bench/hotpath.ts --bare --profile).
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => process.exit(0));

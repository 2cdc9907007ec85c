// The gateway benchmark's cheap upstream: the emulator's own answers to the benchmark's two calls,
// recorded once from a real emulator, served again byte for byte — one for a body asking for a
// stream, the other for the rest — after `--latency` ms, each with a request-id of its own.
//
// Why: the emulator does a provider's work per call (validation, tokens, prompt-cache accounting,
// billing, the reply) and costs ~80–120 µs of CPU a call here, more than the bare proxy it feeds;
// on two shared cores every contender's throughput was then capped by the upstream, not by itself
// (direct to the emulator tops out at ~9–10k req/s, below what a bare node:http proxy does alone).
// Served from memory an answer costs ~35 µs, about what a provider on another machine costs this one.
//
// usage: node bin/run-ts.js bench/replay-upstream.ts <recording.json> [--latency 20]
//   recording.json: { "message": Answer, "stream": Answer }, Answer = { status, contentType, body (base64) }
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Answer {
  status: number;
  contentType: string;
  /** base64 */
  body: string;
}
export interface Recording {
  message: Answer;
  stream: Answer;
}

const argv = process.argv.slice(2);
const latencyAt = argv.indexOf('--latency');
const latencyMs = latencyAt >= 0 ? Number(argv[latencyAt + 1]) : 0;
const rec = JSON.parse(readFileSync(argv[0]!, 'utf8')) as Recording;
const served = (a: Answer) => ({
  status: a.status,
  type: a.contentType,
  body: Buffer.from(a.body, 'base64'),
});
const message = served(rec.message);
const stream = served(rec.stream);
/** The bench's bodies are JSON.stringify's (no spaces): a body with this asks for a stream. */
const STREAM = Buffer.from('"stream":true');

let n = 0;
const server = createServer({ keepAlive: true }, (req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const a = Buffer.concat(chunks).includes(STREAM) ? stream : message;
    const answer = () => {
      res.writeHead(a.status, {
        'content-type': a.type,
        'content-length': a.body.length,
        'request-id': `req_replay${(++n).toString(36).padStart(16, '0')}`,
      });
      res.end(a.body);
    };
    if (latencyMs > 0) setTimeout(answer, latencyMs);
    else answer();
  });
});
server.keepAliveTimeout = 65_000;
server.listen(0, '127.0.0.1', () =>
  console.log(`listening on http://127.0.0.1:${(server.address() as AddressInfo).port}`),
);
for (const sig of ['SIGTERM', 'SIGINT'] as const) process.on(sig, () => server.close(() => process.exit(0)));

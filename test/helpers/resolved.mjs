// What a process resolves as it imports: a module hook (node:module register) reports each
// specifier and the URL it resolved to, from the hooks' thread. For the tests that check what a
// start-up loads (the embedded backend without ioredis or BullMQ, the CLI without the server).
import { register } from 'node:module';
import { MessageChannel } from 'node:worker_threads';

/** Starts watching; `resolved()` gives what was resolved since, `[specifier, url]` pairs. */
export function watchResolved() {
  const { port1, port2 } = new MessageChannel();
  const seen = [];
  port1.on('message', (pair) => seen.push(pair));
  const hook = `let port;
export function initialize(data) { port = data.port; }
export async function resolve(specifier, context, next) {
  const r = await next(specifier, context);
  port.postMessage([specifier, r.url]);
  return r;
}`;
  register(`data:text/javascript,${encodeURIComponent(hook)}`, {
    data: { port: port2 },
    transferList: [port2],
  });
  return {
    async resolved() {
      // Messages from the hooks' thread arrive asynchronously: let them in before answering.
      await new Promise((r) => setTimeout(r, 200));
      port1.close();
      return seen;
    },
  };
}

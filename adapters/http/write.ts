import type { Socket } from 'node:net';

/** A body up to this size goes out in one buffer with its head. */
const JOIN_BELOW = 16 * 1024;

/**
 * Writes an HTTP message's head (Latin-1: a byte a character) and its body in one go: a small body
 * copied with its head into one buffer, one plain write (no corked writev to gather); a large one
 * corked behind its head. The provider client's requests (h1.ts) and the gateway's own answers
 * (runtime/faces/gateway/fast-h1.ts) go out this way.
 */
export function writeMessage(socket: Socket, head: string, body: Buffer | undefined): void {
  if (!body?.length) socket.write(head, 'latin1');
  else if (body.length <= JOIN_BELOW) {
    const out = Buffer.allocUnsafe(head.length + body.length);
    out.write(head, 0, 'latin1');
    body.copy(out, head.length);
    socket.write(out);
  } else {
    socket.cork();
    socket.write(head, 'latin1');
    socket.write(body);
    socket.uncork();
  }
}

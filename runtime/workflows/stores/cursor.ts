/**
 * A list page position: the last run returned, newest started first and ties by id descending.
 * Opaque to callers (base64url of `[startedAt, id]`), so a store may change what it holds.
 */
export interface ListCursor {
  startedAt: number;
  id: string;
}

export function encodeCursor(c: ListCursor): string {
  return Buffer.from(JSON.stringify([c.startedAt, c.id])).toString('base64url');
}

export function decodeCursor(s: string): ListCursor {
  try {
    const [startedAt, id] = JSON.parse(Buffer.from(s, 'base64url').toString('utf8')) as unknown[];
    if (typeof startedAt === 'number' && Number.isFinite(startedAt) && typeof id === 'string') {
      return { startedAt, id };
    }
  } catch {}
  throw new Error(`invalid run list cursor: ${JSON.stringify(s)}`);
}

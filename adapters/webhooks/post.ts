/**
 * One HTTP POST of a JSON body to a webhook (budget alerts' webhooks and Slack incoming webhooks):
 * the bytes as given, a timeout, and the answer's status. The caller decides what a status means
 * and whether to try again. A URL is often a secret (Slack's, Teams'): it is never put in an error.
 */
export interface PostResult {
  status: number;
}

export async function postJson(
  url: string,
  body: string,
  headers: Record<string, string>,
  opts: { timeoutMs: number; signal?: AbortSignal },
): Promise<PostResult> {
  const timeout = AbortSignal.timeout(opts.timeoutMs);
  const signal = opts.signal ? AbortSignal.any([opts.signal, timeout]) : timeout;
  let res: Response;
  try {
    res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body,
      signal,
    });
  } catch (err) {
    const e = err as Error & { cause?: { code?: string } };
    const why = timeout.aborted
      ? `no answer within ${opts.timeoutMs} ms`
      : (e.cause?.code ?? e.name ?? 'request failed');
    throw new Error(`POST to ${originOf(url)} failed: ${why}`);
  }
  // The body is read and dropped so the connection can be reused.
  await res.arrayBuffer().catch(() => undefined);
  return { status: res.status };
}

/** The URL's origin (scheme, host, port): what may be logged of a webhook. */
export function originOf(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return '(invalid url)';
  }
}

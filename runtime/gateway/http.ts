import type { IncomingMessage, ServerResponse } from 'node:http';
import { readBody } from '../../adapters/upstream.ts';
import type { ApiKey, KeyRing } from '../auth/keys.ts';
import { type Identity, isScopeKey } from '../identity.ts';
import { newId } from '../ids.ts';
import { observeRejected } from '../observability/observe.ts';
import type { Runtime } from '../runtime.ts';
import { modelCall, respondRefusal, type Sink } from './call.ts';
import { countTokensBody, firstIssue, messagesBody } from './messages.ts';
import { invalidRequest, killed, Refusal, unavailable } from './refusal.ts';

/**
 * The Anthropic-compatible face: `POST /v1/messages` and `POST /v1/messages/count_tokens`.
 * A plain node:http handler: bytes in, identity and enforcement, bytes out. Bad input is answered
 * before anything is reserved, in the Anthropic error shape with the field named.
 */
export function gatewayHandler(rt: Runtime, keys: KeyRing) {
  return async (req: IncomingMessage, res: ServerResponse, path: string): Promise<void> => {
    const requestId = newId('req');
    const sink = responseSink(req, res);
    try {
      const key = await authenticate(keys, req);
      const raw = await readLimited(req, rt.config.server.maxBodyBytes);
      let json: unknown;
      try {
        json = JSON.parse(raw.toString('utf8'));
      } catch {
        throw invalidRequest('body', 'not valid JSON');
      }
      const identity = identify(key, req);
      if (path === '/v1/messages/count_tokens')
        return await countTokens(rt, identity, json, req, sink, requestId);
      const parsed = messagesBody.safeParse(json);
      if (!parsed.success) {
        const { field, problem } = firstIssue(parsed.error);
        throw invalidRequest(field, problem);
      }
      const streamKey = `${key.id}:${identity.workflow ?? ''}:${identity.session ?? ''}`;
      await modelCall(
        rt,
        {
          identity,
          requestId,
          body: parsed.data,
          raw,
          headers: req.headers,
          streamKey,
          driftPolicy: key.driftPolicy,
          ...(key.sessionTimeBox && rt.sessions ? { gate: () => rt.sessions!.check(key, identity) } : {}),
        },
        sink,
      );
    } catch (err) {
      if (!(err instanceof Refusal)) rt.log.error('gateway failed', { error: err, requestId });
      const refusal = err instanceof Refusal ? err : unavailable('internal error');
      observeRejected(rt, requestId, refusal.code, refusal.status);
      if (!res.headersSent) respondRefusal(sink, refusal, requestId);
      else res.end();
    }
  };
}

async function authenticate(keys: KeyRing, req: IncomingMessage): Promise<ApiKey> {
  const header = req.headers['x-api-key'];
  const auth = req.headers.authorization;
  const token =
    (Array.isArray(header) ? header[0] : header) ?? (auth?.startsWith('Bearer ') ? auth.slice(7) : undefined);
  if (!token) {
    throw new Refusal(
      'unauthenticated',
      'unauthenticated: send a Chokepoint key (cp_...) as x-api-key or a Bearer token',
    );
  }
  let key: ApiKey | undefined;
  try {
    key = await keys.authenticate(token.trim());
  } catch (err) {
    throw unavailable(`the key store could not be read (${(err as Error).message})`);
  }
  if (!key) throw new Refusal('unauthenticated', 'unauthenticated: unknown or revoked API key');
  return key;
}

function identify(key: ApiKey, req: IncomingMessage): Identity {
  const header = (name: string) => {
    const v = req.headers[name];
    const s = Array.isArray(v) ? v[0] : v;
    if (s !== undefined && !isScopeKey(s)) {
      throw invalidRequest(name, "use letters, digits, '.', '_', '@' or '-' (at most 128)");
    }
    return s;
  };
  const workflow = key.workflow ?? header('x-chokepoint-workflow');
  const session = header('x-chokepoint-session');
  return {
    team: key.team,
    env: key.env,
    seat: key.seat,
    ...(workflow ? { workflow } : {}),
    ...(session ? { session } : {}),
    keyId: key.id,
  };
}

async function countTokens(
  rt: Runtime,
  identity: Identity,
  json: unknown,
  req: IncomingMessage,
  sink: Sink,
  requestId: string,
): Promise<void> {
  const parsed = countTokensBody.safeParse(json);
  if (!parsed.success) {
    const { field, problem } = firstIssue(parsed.error);
    throw invalidRequest(field, problem);
  }
  if (!rt.prices.has(parsed.data.model, rt.now())) {
    throw invalidRequest(
      'model',
      `unknown model ${JSON.stringify(parsed.data.model)}: no price is known for it`,
    );
  }
  let kill: Awaited<ReturnType<Runtime['store']['killedBy']>>;
  try {
    kill = await rt.store.killedBy(identity);
  } catch (err) {
    throw unavailable((err as Error).message);
  }
  if (kill) throw killed(kill);
  const res = await rt.upstream.post(
    'v1/messages/count_tokens',
    Buffer.from(JSON.stringify(parsed.data)),
    req.headers,
  );
  const buf = await readBody(res.body);
  sink.head(res.status, { 'content-type': 'application/json', 'request-id': requestId });
  sink.chunk(buf);
  sink.end();
}

function readLimited(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > limit) {
    req.resume();
    return Promise.reject(tooLarge(limit));
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        req.removeAllListeners('data');
        req.resume();
        reject(tooLarge(limit));
      } else chunks.push(c);
    });
    req.on('end', () => resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function tooLarge(limit: number): Refusal {
  return new Refusal('request_too_large', `request_too_large: the body is over the limit of ${limit} bytes`, {
    field: 'body',
    limit_bytes: limit,
  });
}

/**
 * The HTTP side of a Sink. A complete answer (head, one chunk, end: a non-streamed message, an
 * error, a refusal) goes out as one write with a content-length; a stream is written as it comes.
 */
function responseSink(req: IncomingMessage, res: ServerResponse): Sink {
  let gone = false;
  let held: { status: number; headers: Record<string, string>; body?: Buffer } | undefined;
  res.on('close', () => {
    if (!res.writableFinished) gone = true;
  });
  req.on('aborted', () => {
    gone = true;
  });
  const release = () => {
    if (!held) return;
    const { status, headers } = held;
    held = undefined;
    if (!res.headersSent) res.writeHead(status, headers);
  };
  return {
    get gone() {
      return gone || res.destroyed;
    },
    head(status, headers) {
      if (gone || res.headersSent || held) return;
      if (headers['content-type']?.includes('text/event-stream')) {
        res.writeHead(status, headers);
        res.flushHeaders();
      } else held = { status, headers };
    },
    chunk(data) {
      if (gone || res.destroyed) return;
      if (held && !held.body) held.body = data;
      else {
        const first = held?.body;
        release();
        if (first) res.write(first);
        res.write(data);
      }
    },
    end() {
      if (res.writableEnded) return;
      if (held && !res.headersSent && !gone) {
        const body = held.body ?? Buffer.alloc(0);
        res.writeHead(held.status, { ...held.headers, 'content-length': String(body.length) });
        held = undefined;
        res.end(body);
      } else res.end();
    },
  };
}

import type { IncomingMessage, ServerResponse } from 'node:http';
import { readAll } from '../../../adapters/provider.ts';
import type { ApiKey, KeyRing } from '../../auth/keys.ts';
import type { Services } from '../../compose.ts';
import { checkBody } from '../../gateway/messages.ts';
import { invalidRequest, killed, Refusal, unavailable, unknownModel } from '../../gateway/refusal.ts';
import { respondJson, respondRefusal, type Sink } from '../../gateway/sink.ts';
import { type Identity, isScopeKey } from '../../identity.ts';
import { newId } from '../../ids.ts';
import { Batches } from './batches.ts';
import { listModels } from './models.ts';

/**
 * The Anthropic-compatible face: every `/v1/*` path. `POST /v1/messages` and its count_tokens
 * take the call path; `GET /v1/models` lists what the key may call; Message Batches are admitted
 * as a whole at the batch price; any other `/v1` path is a JSON 404 in the Anthropic envelope
 * (never the inbox). A plain node:http handler: bytes in, identity and enforcement, bytes out.
 * Bad input is answered before anything is reserved, with the field named.
 */
export function gatewayHandler(rt: Services, keys: KeyRing) {
  const batches = new Batches(rt);
  return async (req: IncomingMessage, res: ServerResponse, path: string): Promise<void> => {
    const requestId = newId('req');
    const sink = responseSink(req, res);
    try {
      const key = await authenticate(keys, req);
      const identity = identify(key, req);
      const method = req.method ?? 'GET';
      if (method === 'POST' && path === '/v1/messages') {
        const raw = await readLimited(req, rt.config.server.maxBodyBytes);
        const body = checkBody(parseJson(raw));
        const streamKey = `${key.id}:${identity.workflow ?? ''}:${identity.session ?? ''}`;
        await rt.calls.model(
          {
            identity,
            requestId,
            body,
            raw,
            query: queryOf(req.url),
            headers: req.headers,
            streamKey,
            driftPolicy: key.driftPolicy,
            maxTokens: maxTokensPolicy(rt, key, identity),
            ...(key.sessionTimeBox ? { gate: () => rt.sessions.check(key, identity) } : {}),
          },
          sink,
        );
        return;
      }
      if (method === 'POST' && path === '/v1/messages/count_tokens') {
        const raw = await readLimited(req, rt.config.server.maxBodyBytes);
        return await countTokens(rt, identity, parseJson(raw), raw, req, sink, requestId);
      }
      if (method === 'GET' && (path === '/v1/models' || path.startsWith('/v1/models/'))) {
        req.resume();
        return respondJson(sink, 200, listModels(rt, identity, path, req.url), requestId);
      }
      if (path === '/v1/messages/batches' || path.startsWith('/v1/messages/batches/')) {
        return await batches.handle({
          identity,
          requestId,
          method,
          path,
          req,
          sink,
          readBody: () => readLimited(req, rt.config.server.maxBodyBytes),
        });
      }
      req.resume();
      throw new Refusal(
        'not_found',
        `not_found: no route ${method} ${path} on this gateway (it serves /v1/messages, /v1/messages/count_tokens, /v1/models and /v1/messages/batches)`,
      );
    } catch (err) {
      if (!(err instanceof Refusal)) rt.log.error('gateway failed', { error: err, requestId });
      const refusal = err instanceof Refusal ? err : unavailable('internal error');
      rt.calls.rejected(requestId, refusal.code, refusal.status);
      if (!res.headersSent) respondRefusal(sink, refusal, requestId);
      else res.end();
    }
  };
}

/** `fit` or `refuse` for this caller: the key's setting, else its routing rule's, else the config's. */
function maxTokensPolicy(
  rt: Services,
  key: ApiKey,
  identity: Identity,
): { mode: 'fit' | 'refuse'; floor: number } {
  const mode = key.maxTokens ?? rt.router.ruleFor(identity)?.maxTokens ?? rt.config.gateway.maxTokens;
  return { mode, floor: rt.config.gateway.maxTokensFloor };
}

function parseJson(raw: Buffer): unknown {
  try {
    return JSON.parse(raw.toString('utf8'));
  } catch {
    throw invalidRequest('body', 'not valid JSON');
  }
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
  const value = (name: string) => {
    const v = req.headers[name];
    return Array.isArray(v) ? v[0] : v;
  };
  const header = (name: string) => {
    const s = value(name);
    if (s !== undefined && !isScopeKey(s)) {
      throw invalidRequest(name, "use letters, digits, '.', '_', '@' or '-' (at most 128)");
    }
    return s;
  };
  const workflow = key.workflow ?? header('x-chokepoint-workflow');
  // Claude Code names its session (a UUID) on every call; ours wins when both are sent.
  const claudeCode = value('x-claude-code-session-id');
  const session =
    header('x-chokepoint-session') ?? (claudeCode && isScopeKey(claudeCode) ? claudeCode : undefined);
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
  rt: Services,
  identity: Identity,
  json: unknown,
  raw: Buffer,
  req: IncomingMessage,
  sink: Sink,
  requestId: string,
): Promise<void> {
  const body = checkBody(json, false);
  if (!rt.prices.has(body.model, rt.now())) throw unknownModel(body.model);
  let kill: Awaited<ReturnType<Services['store']['killedBy']>>;
  try {
    kill = await rt.store.killedBy(identity);
  } catch (err) {
    throw unavailable((err as Error).message);
  }
  if (kill) throw killed(kill);
  const provider = rt.provider;
  if (!provider.passthrough) {
    throw new Refusal('not_found', `not_found: the ${provider.kind} provider has no count_tokens`);
  }
  const res = await provider.passthrough(
    'POST',
    `v1/messages/count_tokens${queryOf(req.url)}`,
    raw,
    req.headers,
  );
  const buf = await readAll(res.body);
  sink.head(res.status, { 'content-type': 'application/json', 'request-id': requestId });
  sink.chunk(buf);
  sink.end();
}

/** The caller's query string (`?beta=true` from the SDK's beta client), forwarded as it came. */
function queryOf(url: string | undefined): string {
  const q = url?.indexOf('?') ?? -1;
  return q === -1 ? '' : url!.slice(q);
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

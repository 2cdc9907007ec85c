import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { detach } from '../../../adapters/provider.ts';
import type { ApiKey, KeyRing } from '../../auth/keys.ts';
import type { Services } from '../../compose.ts';
import { invalidRequest, killed, Refusal, unavailable, unknownModel } from '../../gateway/refusal.ts';
import { type Sink, withHeader } from '../../gateway/sink.ts';
import { type Identity, isScopeKey } from '../../identity.ts';

/*
 * What every gateway face shares, whatever its wire format: the caller's key and identity, the
 * body read within its limit, the policy for a worst case that does not fit, and the HTTP sink.
 */

/** `fit` or `refuse` for this caller: the key's setting, else its routing rule's, else the config's. */
export function maxTokensPolicy(
  rt: Services,
  key: ApiKey,
  identity: Identity,
): { mode: 'fit' | 'refuse'; floor: number } {
  const mode = key.maxTokens ?? rt.router.ruleFor(identity)?.maxTokens ?? rt.config.gateway.maxTokens;
  return { mode, floor: rt.config.gateway.maxTokensFloor };
}

export function parseJson(raw: Buffer): unknown {
  try {
    return JSON.parse(raw.toString('utf8'));
  } catch {
    throw invalidRequest('body', 'not valid JSON');
  }
}

/**
 * The caller's key, from x-api-key or a Bearer token: the record itself when the key ring's cache
 * knows it (no promise on the hot path), a promise when the store must be asked.
 */
export function authenticate(keys: KeyRing, req: { headers: IncomingHttpHeaders }): ApiKey | Promise<ApiKey> {
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
  let found: ReturnType<KeyRing['lookup']>;
  try {
    found = keys.lookup(token.trim());
  } catch (err) {
    throw keyStoreDown(err);
  }
  return found instanceof Promise
    ? found.then(known, (err) => {
        throw keyStoreDown(err);
      })
    : known(found);
}

function known(key: ApiKey | undefined): ApiKey {
  if (!key) throw new Refusal('unauthenticated', 'unauthenticated: unknown or revoked API key');
  return key;
}

function keyStoreDown(err: unknown): Refusal {
  return unavailable(`the key store could not be read (${(err as Error).message})`);
}

export function identify(key: ApiKey, req: { headers: IncomingHttpHeaders }): Identity {
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
  return identityOf(key, workflow, session);
}

/** Each key's identities, one per workflow and session seen (a bounded few). */
const IDENTITIES = new WeakMap<ApiKey, Map<string, Identity>>();
const IDENTITIES_PER_KEY = 1000;

/**
 * The identity of a call with `key`, `workflow` and `session`: the same frozen object for the same
 * three, so what is derived from an identity (its scopes, its JSON in the lease journal) is worked
 * out once, not per call.
 */
function identityOf(key: ApiKey, workflow: string | undefined, session: string | undefined): Identity {
  let known = IDENTITIES.get(key);
  if (!known) {
    known = new Map();
    IDENTITIES.set(key, known);
  }
  // Workflow and session are scope keys (no newline): the pair is told apart by one.
  const k = workflow === undefined && session === undefined ? '' : `${workflow ?? ''}\n${session ?? ''}`;
  let identity = known.get(k);
  if (identity === undefined) {
    const i: Identity = { team: key.team, env: key.env, seat: key.seat };
    if (workflow) i.workflow = workflow;
    if (session) i.session = session;
    i.keyId = key.id;
    identity = Object.freeze(i);
    if (known.size >= IDENTITIES_PER_KEY) known.clear();
    known.set(k, identity);
  }
  return identity;
}

/** The caller's query string (`?beta=true` from the SDK's beta client), forwarded as it came. */
export function queryOf(url: string | undefined): string {
  const q = url?.indexOf('?') ?? -1;
  return q === -1 ? '' : url!.slice(q);
}

export function readLimited(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > limit) {
    req.resume();
    return Promise.reject(tooLarge(limit));
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        detach(req, onData, onEnd, onError);
        req.resume();
        reject(tooLarge(limit));
      } else chunks.push(c);
    };
    const onEnd = () => {
      detach(req, onData, onEnd, onError);
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks));
    };
    const onError = (err: Error) => {
      detach(req, onData, onEnd, onError);
      reject(err);
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
  });
}

export function tooLarge(limit: number): Refusal {
  return new Refusal('request_too_large', `request_too_large: the body is over the limit of ${limit} bytes`, {
    field: 'body',
    limit_bytes: limit,
  });
}

/**
 * The HTTP side of a Sink. A complete answer (head, one chunk, end: a non-streamed message, an
 * error, a refusal, a stream that came whole — see Sink.whole) goes out as one write with a
 * content-length; a stream is written as it comes, its head with its first bytes (one write, not
 * two) or, when they are not there yet, on the next turn of the event loop.
 */
export function responseSink(_req: IncomingMessage, res: ServerResponse): Sink {
  return new ResponseSink(res);
}

/** A class, not closures: nothing to allocate per call but the object and its listener. */
class ResponseSink implements Sink {
  private left = false;
  /** The head, not written yet; a complete answer's first bytes with it. */
  private held: { status: number; headers: Record<string, string>; body?: Buffer } | undefined;
  /** An event stream not known to be whole: its bytes are written as they come. */
  private streaming = false;

  private readonly onClose = () => {
    if (!this.res.writableFinished) this.left = true;
  };

  constructor(private readonly res: ServerResponse) {
    // The response's 'close' is the one signal a client that went away always gives (the request's
    // 'aborted' only when its body was cut short).
    res.on('close', this.onClose);
  }

  get gone(): boolean {
    return this.left || this.res.destroyed;
  }

  head(status: number, headers: Record<string, string>): void {
    if (this.left || this.res.headersSent || this.held) return;
    this.held = { status, headers };
    if (headers['content-type']?.includes('text/event-stream')) {
      this.streaming = true;
      setImmediate(flushHead, this);
    }
  }

  chunk(data: Buffer): void {
    const { res, held } = this;
    if (this.left || res.destroyed) return;
    if (held && !held.body && !this.streaming) held.body = data;
    else {
      const first = held?.body;
      this.release();
      if (first) res.write(first);
      res.write(data);
    }
  }

  end(): void {
    const { res, held } = this;
    // Nothing more is written: the response (whose socket outlives the call on a keep-alive
    // connection) lets go of this sink (see detach in adapters/provider.ts), ended here or before.
    res.removeListener('close', this.onClose);
    if (res.writableEnded) return;
    if (held && !res.headersSent && !this.left) {
      const body = held.body ?? Buffer.alloc(0);
      res.writeHead(held.status, withHeader(held.headers, 'content-length', String(body.length)));
      this.held = undefined;
      res.end(body);
    } else res.end();
  }

  /** Writes the held head (a stream's first bytes came after it). */
  private release(): void {
    const { held } = this;
    if (!held) return;
    this.held = undefined;
    if (!this.res.headersSent) this.res.writeHead(held.status, held.headers);
  }

  /** The stream came whole: held like a complete answer, written in one piece once settled. */
  whole(): void {
    this.streaming = false;
  }

  /** A stream's head on its own when its first bytes did not come with it (still held). */
  flushHead(): void {
    if (!this.streaming || !this.held || this.res.destroyed || this.res.writableEnded) return;
    try {
      this.release();
      this.res.flushHeaders();
    } catch {
      // A header node refuses, in a turn of its own (no handler to catch it): the connection is
      // dropped, not the process.
      this.res.destroy();
    }
  }
}

const flushHead = (sink: ResponseSink) => sink.flushHead();

/** A count_tokens call is not billed, but it names a priced model and obeys the kill switches. */
export async function mayCount(rt: Services, identity: Identity, model: string): Promise<void> {
  if (!rt.prices.has(model, rt.now())) throw unknownModel(model);
  let kill: Awaited<ReturnType<Services['store']['killedBy']>>;
  try {
    kill = await rt.store.killedBy(identity);
  } catch (err) {
    throw unavailable((err as Error).message);
  }
  if (kill) throw killed(kill);
}

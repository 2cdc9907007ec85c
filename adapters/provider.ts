import type { IncomingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';

/**
 * The Provider port: what the call path needs from a model provider, and nothing of policy.
 * A provider sends a request in its own wire format, reads usage off its answers (a whole JSON
 * body, or a stream as it passes through), counts tokens, and maps its failures to three kinds.
 * Prices, budgets and refusals stay in the runtime; an adapter knows wire formats only.
 *
 * Adding a provider is one adapter folder implementing this, one line in `providers.ts`, and one
 * config value (`provider.kind`).
 */

export type CallerHeaders = Record<string, string | string[] | undefined>;

/** Tokens by class, as providers bill them (a cache write split by its TTL). */
export interface UsageTokens {
  input: number;
  cacheWrite5m: number;
  cacheWrite1h: number;
  cacheRead: number;
  output: number;
}

/** Everything one answer is billed for. */
export interface Usage {
  /** All tokens of the call by class (sampling steps summed). */
  tokens: UsageTokens;
  /** Per model when sampling steps ran on other models (advisor, fallback); undefined otherwise. */
  parts?: Array<{ model?: string; tokens: UsageTokens }>;
  /**
   * Server tools billed per use. `fileSearch` and `codeInterpreter` are OpenAI's (Responses API
   * `file_search_call`, `code_interpreter_call`); OpenAI's `web_search_call` counts as `webSearch`.
   */
  serverTools?: {
    webSearch?: number;
    webFetch?: number;
    codeExecution?: number;
    fileSearch?: number;
    codeInterpreter?: number;
  };
  /** Price modifiers the provider reports it applied. */
  options: { batch?: boolean; usOnly?: boolean; fast?: boolean };
}

export interface SendRequest {
  /** The request body in the provider's wire format, sent byte for byte. */
  body: Buffer;
  /** The caller's query string (`?beta=true`), passed on as it came. */
  query?: string;
  /** Caller headers; the adapter drops credentials and hop-by-hop ones and adds its own. */
  headers?: CallerHeaders;
  /** Aborts the call (kill, time box). */
  signal?: AbortSignal;
  /** Our request id, sent along so the provider's bill can be matched to the ledger. */
  requestId?: string;
  /**
   * Where the call should run, in the provider's own terms: a Bedrock inference-profile prefix
   * (`us`, `eu`, `apac`, `global`) or a Vertex location (`us-east5`, `europe-west1`, `global`).
   * Undefined: the provider's configured default. Providers without regions ignore it.
   */
  geo?: string;
  /**
   * Family `openai` only: the endpoint under `/v1` the body is for (`chat/completions`,
   * `responses`, `embeddings`). The `anthropic` family has one endpoint (Messages).
   */
  path?: string;
}

/** The head of an answer, as soon as it arrives; the body is read once, by the caller. */
export interface ProviderResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Readable;
  /** True when the body is a stream of events (read with `streamReader()`). */
  streaming: boolean;
}

/** Follows a streamed answer as its bytes pass through, without holding it. */
export interface StreamReader {
  feed(chunk: Buffer): void;
  /**
   * Where in `chunk` the answer's final event starts (-1: not in it). The gateway holds the
   * answer back from there until the call is settled, so no client has a whole answer that
   * was not charged.
   */
  finalAt(chunk: Buffer): number;
  /** What the stream bills so far (at least what its deltas showed, if it broke off). */
  usage(): Usage;
  /** The provider's error type, if the stream carried an error event. */
  readonly errorType?: string;
}

/** A provider call that brought no answer: no answer in time, aborted, or no connection. */
export class ProviderError extends Error {
  constructor(
    message: string,
    readonly kind: 'timeout' | 'aborted' | 'network',
  ) {
    super(message);
    this.name = 'ProviderError';
  }
}

/**
 * The wire format a provider takes and gives back through this port. `anthropic`: an Anthropic
 * Messages request body with its `model` (a canonical Anthropic model id such as
 * `claude-opus-5-5`), answered as Anthropic answers — a JSON message, an Anthropic SSE stream
 * (`text/event-stream`), or an Anthropic error envelope `{type:'error', error:{type, message}}`
 * with the provider's status. An adapter whose upstream speaks something else (Bedrock's
 * event-stream, Vertex's URL-named model) converts both ways inside the adapter, so the call path
 * and every face see one format. `openai`: the OpenAI format (chat completions, responses,
 * embeddings), passed through as OpenAI speaks it.
 */
export type Family = 'anthropic' | 'openai';

/** Whatever a call threw, as a ProviderError: one already is; anything else is a network failure. */
export function asProviderError(err: unknown): ProviderError {
  return err instanceof ProviderError
    ? err
    : new ProviderError((err as Error)?.message ?? String(err), 'network');
}

export interface Provider {
  readonly kind: string;
  /** The wire format `send` takes (default `anthropic`). */
  readonly family?: Family;
  /** A model call; resolves with the answer's head. Rejects with a ProviderError. */
  send(req: SendRequest): Promise<ProviderResponse>;
  /** Usage and error type of a whole (non-streamed) answer. Throws on a body it cannot read. */
  answer(status: number, body: Buffer): { usage?: Usage; errorType?: string };
  /** Usage of one answer object already parsed (a batch result's message). */
  usageOf(message: unknown): Usage;
  streamReader(): StreamReader;
  /** Exact input tokens of a request body, or undefined when the provider cannot say. */
  countTokens(body: Record<string, unknown>, headers?: CallerHeaders): Promise<number | undefined>;
  /**
   * True when a call of `model` with this geo (SendRequest.geo; undefined: the provider's
   * default) is served on a regional endpoint that the cloud prices above its global one (1.1×
   * for recent Claude models on Bedrock and Vertex). Providers without regions leave it out.
   */
  regional?(model: string, geo?: string): boolean;
  /** Maps whatever a call threw to a ProviderError. */
  failure(err: unknown): ProviderError;
  /**
   * Any other path of the provider's own API (count_tokens, Message Batches), for the faces
   * that speak that API. Providers without one leave it out.
   */
  passthrough?(
    method: string,
    path: string,
    body: Buffer | undefined,
    headers: CallerHeaders,
    requestId?: string,
  ): Promise<ProviderResponse>;
  close(): Promise<void>;
}

export interface ProviderSettings {
  kind: string;
  baseUrl?: string;
  /** The provider credential; never the caller's key. */
  apiKey?: string;
  /**
   * Kind-specific settings from the config's `providers.<name>` entry (a Bedrock `region`, a
   * Vertex `project`, static credentials...). The adapter validates them and names the field
   * it rejects (`providers.bedrock.region: required`).
   */
  options?: Record<string, unknown>;
  /** The provider's name in the config (`bedrock`), for error messages. */
  name?: string;
  /** No bytes for this long aborts a call. */
  timeoutMs: number;
  /** The data folder, made private on first use: where a provider may keep files (the emulator's bill). */
  dataDir(): string;
  /** Tells the operators something loudly (the emulator says no real model is called). */
  warn(message: string, fields?: Record<string, unknown>): void;
}

export type ProviderFactory = (settings: ProviderSettings) => Promise<Provider>;

/**
 * A body that can hand over all its bytes without being read as a stream (the provider HTTP
 * client's, adapters/http/upstream.ts): `readAll` asks it first.
 */
export const READ_WHOLE: unique symbol = Symbol('read whole');

/**
 * A body whose pieces can be handed to a callback as they come, with no stream machinery in between
 * (the provider HTTP client's): `readPieces` asks it first.
 */
export const READ_PIECES: unique symbol = Symbol('read pieces');

/**
 * Reads a body piece by piece: `piece` for each as it comes, then `end` once, with the error if it
 * broke off (an error, or closed before its end). The body lets go of the callbacks at its end;
 * destroying it stops the reading (`end` is called with the reason). Through READ_PIECES when the
 * body offers it (the provider HTTP client's: no `data`/`end`/`error`/`close` listeners, no pushes
 * through a stream buffer), through stream events otherwise.
 */
export function readPieces(body: Readable, piece: (chunk: Buffer) => void, end: (err?: Error) => void): void {
  const direct = (body as Readable & { [READ_PIECES]?: (p: typeof piece, e: typeof end) => boolean })[
    READ_PIECES
  ];
  if (direct?.call(body, piece, end)) return;
  listenTo(body, piece, end, prematureClose);
}

/** A body read through its events; `brokeOff` names a close before its end. Its listeners are
 * taken off at its end (see detach). */
function listenTo(
  body: Readable,
  piece: (chunk: Buffer) => void,
  end: (err?: Error) => void,
  brokeOff: () => Error,
): void {
  let ended = false;
  const onEnd = () => {
    ended = true;
    done(undefined);
  };
  const onClose = () => {
    if (!ended) done(brokeOff());
  };
  const done = (err: Error | undefined) => {
    detach(body, piece, onEnd, done, onClose);
    end(err);
  };
  body.on('data', piece);
  body.on('end', onEnd);
  body.on('error', done);
  body.on('close', onClose);
}

/** What `for await` over a stream throws when it closes before its end. */
export function prematureClose(): Error {
  return Object.assign(new Error('Premature close'), { code: 'ERR_STREAM_PREMATURE_CLOSE' });
}

/**
 * Reads a whole body (small JSON answers: count_tokens, errors, non-streamed messages).
 * Rejects when the body breaks off (error, or closed before its end).
 */
export function readAll(body: Readable): Promise<Buffer> {
  const whole = (body as Readable & { [READ_WHOLE]?: () => Promise<Buffer> | undefined })[READ_WHOLE];
  return whole?.call(body) ?? readStream(body);
}

function readStream(body: Readable): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    listenTo(
      body,
      (c) => chunks.push(c),
      (err) => (err ? reject(err) : resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks))),
      () => new Error('the response broke off before its end'),
    );
  });
}

/**
 * Takes a reader's listeners off a body it has finished with (a provider's response, a client's
 * request). A body outlives its call — a keep-alive client can let go of a response late — and
 * one promoted to the old generation keeps whatever its listeners reach alive through every
 * scavenge until the next full collection: left on, a streamed call's listeners (which reach the
 * whole call: the client's response, the request, the settlement) tripled the time the collector
 * spent per call (bench/profile.ts --node-flag --trace-gc: 27 → 8 µs a streamed call at
 * saturation). An 'error' listener that swallows stays, so a late error on the finished body is
 * not thrown.
 */
export function detach(
  body: Readable,
  onData: (c: Buffer) => void,
  onEnd: () => void,
  onError: (err: Error) => void,
  onClose?: () => void,
): void {
  body.removeListener('data', onData);
  body.removeListener('end', onEnd);
  if (onClose) body.removeListener('close', onClose);
  body.removeListener('error', onError);
  body.on('error', ignore);
}

const ignore = () => {};

import { performance } from 'node:perf_hooks';
import {
  type Provider,
  ProviderError,
  type ProviderResponse,
  readAll,
  readPieces,
} from '../../adapters/provider.ts';
import type { CallDeps, ModelCall } from './call.ts';
import type { Admitted } from './decide.ts';
import type { CallTiming } from './observe.ts';
import type { Sink } from './sink.ts';
import type { Billed } from './usage.ts';

/** What the provider answered, read as far as settlement needs. */
export interface Answer {
  status: number;
  billed: Billed;
  errorType?: string;
  /** The answer broke off (aborted, or the provider connection broke mid-answer). */
  aborted: boolean;
  /** Writes the rest of the answer: called once the call is settled. */
  rest(): void;
}

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'transfer-encoding',
  'content-length',
  'date',
  'server',
]);

const nothing = (): Billed => ({
  tokens: { input: 0, cacheWrite5m: 0, cacheWrite1h: 0, cacheRead: 0, output: 0 },
  options: {},
});

/**
 * Forward: the admitted call to the provider, its answer to the sink. The rest of the answer is
 * written only once the call is settled (`rest`): settlement is durable before the client can have
 * the whole answer, so a crash in between cannot leave a call the client received (and the
 * provider billed) uncharged. A stream is forwarded as it comes up to its final event; a complete
 * answer is held whole.
 */
export async function forward(
  d: Pick<CallDeps, 'providers'>,
  call: ModelCall,
  admitted: Admitted,
  sink: Sink,
  timing: CallTiming,
): Promise<Answer | { failure: ProviderError }> {
  const { body } = call;
  const { model, maxTokens } = admitted;
  const provider = d.providers.get(admitted.provider)!;
  // An OpenAI-format body keeps its own output cap: only a routed model is rewritten.
  const fitted = !call.openai && maxTokens !== body.max_tokens;
  const payload =
    model === body.model && !fitted && call.raw
      ? call.raw
      : Buffer.from(
          JSON.stringify(call.openai ? { ...body, model } : { ...body, model, max_tokens: maxTokens }),
        );
  let res: ProviderResponse;
  try {
    res = await provider.send({
      body: payload,
      query: call.query,
      headers: call.headers,
      signal: call.signal,
      requestId: call.requestId,
      ...(call.geo ? { geo: call.geo } : {}),
      ...(call.openai ? { path: call.openai.endpoint } : {}),
    });
    timing.responded = performance.now();
  } catch (err) {
    timing.responded = performance.now();
    return { failure: provider.failure(err) };
  }
  const headers: Record<string, string> = {
    'request-id': call.requestId,
    'x-chokepoint-request-id': call.requestId,
  };
  const given = res.headers;
  for (const k in given) {
    const v = given[k];
    if (!HOP_BY_HOP.has(k) && v !== undefined) headers[k] = Array.isArray(v) ? v.join(', ') : v;
  }
  // Both built from request data: only ever sent as plain printable ASCII (a header with a CR/LF
  // or a control character would make node throw mid-answer).
  if (model !== body.model) headers['x-chokepoint-model'] = headerSafe(`${model}; requested=${body.model}`);
  if (fitted) headers['x-chokepoint-max-tokens'] = `${maxTokens}; requested=${body.max_tokens}`;
  headers['x-chokepoint-provider'] = headerSafe(admitted.provider);
  return res.streaming
    ? relay(provider, res, headers, call, sink)
    : whole(provider, res, headers, call, sink);
}

/** A streamed answer: passed on as it comes, held from its final event until settlement. */
async function relay(
  provider: Provider,
  res: ProviderResponse,
  headers: Record<string, string>,
  call: ModelCall,
  sink: Sink,
): Promise<Answer> {
  const reader = provider.streamReader();
  const held: Buffer[] = [];
  /** Held whole (see Sink.whole): where its final event starts in held[0]; -1 if not. */
  let before = -1;
  const answer: Answer = { status: res.status, billed: nothing(), aborted: false, rest: () => {} };
  sink.head(200, headers);
  // Read piece by piece, not `for await`: an async iterator costs a promise and a few closures
  // per chunk, and a long answer is hundreds of chunks.
  const failed = await new Promise<Error | undefined>((resolve) => {
    const body = res.body;
    let wrote = false;
    let over = false;
    const take = (chunk: Buffer) => {
      reader.feed(chunk);
      // A client that went away still gets billed what the provider generates: keep reading.
      if (held.length === 0) {
        const stop = reader.finalAt(chunk);
        if (stop === -1) {
          if (!sink.gone) sink.chunk(chunk);
          wrote = true;
          return;
        }
        if (!wrote && sink.whole) {
          // The whole answer in its first bytes: written at once after settlement, head and all.
          sink.whole();
          held.push(chunk);
          before = stop;
          return;
        }
        if (stop > 0 && !sink.gone) sink.chunk(chunk.subarray(0, stop));
        held.push(chunk.subarray(stop));
      } else held.push(chunk);
    };
    const end = (err?: Error) => {
      if (over) return;
      over = true;
      resolve(err);
    };
    readPieces(
      body,
      (chunk) => {
        if (over) return;
        try {
          take(chunk);
        } catch (err) {
          // As a throw inside `for await` would: the stream is stopped and the answer broke off.
          end(err as Error);
          body.destroy();
        }
      },
      // Closed before its end (the provider connection broke, the call was aborted): what the
      // stream showed so far is billed, as for an error.
      end,
    );
  });
  if (!failed) {
    answer.errorType = reader.errorType;
    answer.rest = () => {
      if (sink.gone) return;
      for (const h of held) sink.chunk(h);
      sink.end();
    };
  } else {
    // Aborted (kill, time box) or the provider connection broke mid-answer: what the stream
    // showed so far (input, and output at least the deltas seen) is billed.
    answer.aborted = true;
    answer.errorType = call.signal?.aborted ? 'aborted' : brokeOff(failed);
    answer.rest = () => {
      if (sink.gone) return;
      // What a stream held whole showed before its final event is passed on, as it would have been.
      if (before > 0) sink.chunk(held[0]!.subarray(0, before));
      sink.end();
    };
  }
  answer.billed = reader.usage();
  return answer;
}

/** A complete answer (a message, or the provider's error): read whole, written after settlement. */
async function whole(
  provider: Provider,
  res: ProviderResponse,
  headers: Record<string, string>,
  call: ModelCall,
  sink: Sink,
): Promise<Answer> {
  try {
    const buf = await readAll(res.body);
    const read = provider.answer(res.status, buf);
    return {
      status: res.status,
      billed: read.usage ?? nothing(),
      errorType: read.errorType,
      aborted: false,
      rest: () => {
        sink.head(res.status, headers);
        sink.chunk(buf);
        sink.end();
      },
    };
  } catch (err) {
    return {
      status: res.status,
      billed: nothing(),
      aborted: true,
      errorType: call.signal?.aborted ? 'aborted' : brokeOff(err as Error),
      rest: () => {
        if (!sink.gone) sink.end();
      },
    };
  }
}

/** The error code of an answer that broke off: the provider's failure kind (upstream_timeout,
 * upstream_network), else the error's name. */
function brokeOff(err: Error): string {
  return `upstream_${err instanceof ProviderError ? err.kind : err.name}`;
}

function headerSafe(v: string): string {
  return /^[\x20-\x7e]*$/.test(v) ? v : encodeURIComponent(v);
}

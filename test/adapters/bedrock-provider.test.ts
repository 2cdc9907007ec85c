import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { chunkMessage } from '../../adapters/bedrock/eventstream.ts';
import { type BedrockProvider, listInferenceProfiles } from '../../adapters/bedrock/provider.ts';
import {
  createEmulator,
  type Emulator,
  type Listening,
  priceCall,
  resolveModel,
} from '../../adapters/emulator/index.ts';
import { listenDual } from '../../adapters/http/h2c.ts';
import type { Provider, Usage } from '../../adapters/provider.ts';
import { readAll } from '../../adapters/provider.ts';
import { openProvider } from '../../adapters/providers.ts';

let emu: Emulator;
let server: Listening;
let bedrock: BedrockProvider;

const settings = (options: Record<string, unknown>, baseUrl?: string) => ({
  kind: 'bedrock',
  name: 'bedrock',
  ...(baseUrl ? { baseUrl } : {}),
  options,
  timeoutMs: 10_000,
  dataDir: () => mkdtempSync(join(tmpdir(), 'cp-bedrock-')),
  warn: () => undefined,
});

beforeAll(async () => {
  emu = createEmulator();
  server = await emu.listen();
  bedrock = (await openProvider(
    settings({ region: 'us-east-1', profile: 'us', ...emu.awsCredentials }, `${server.url}/bedrock`),
  )) as BedrockProvider;
});
afterAll(async () => {
  await bedrock.close();
  await server.close();
});
beforeEach(() => {
  emu.billing.clear();
  emu.clearFaults();
  emu.script([]);
});

const request = (model: string, stream: boolean, text = 'Hello there') =>
  Buffer.from(
    JSON.stringify({ model, max_tokens: 128, stream, messages: [{ role: 'user', content: text }] }),
  );

/** Sends, reads the whole answer through the provider's own readers. */
async function call(p: Provider, body: Buffer, geo?: string) {
  const res = await p.send({ body, geo, requestId: 'req_test_1', headers: {} });
  if (!res.streaming) {
    const buf = await readAll(res.body);
    return { res, text: buf.toString('utf8'), read: p.answer(res.status, buf) };
  }
  const reader = p.streamReader();
  const chunks: Buffer[] = [];
  for await (const c of res.body) {
    reader.feed(c as Buffer);
    chunks.push(c as Buffer);
  }
  return {
    res,
    text: Buffer.concat(chunks).toString('utf8'),
    read: { usage: reader.usage(), errorType: reader.errorType },
  };
}

const billedCost = (model: string, usage: Usage, regional: boolean) =>
  priceCall(resolveModel(model)!, { ...usage.tokens }, { regional }).micros;

describe('BedrockProvider against the emulator', () => {
  it('sends a non-streamed call and answers the canonical JSON message; usage equals the bill', async () => {
    const { res, text, read } = await call(bedrock, request('claude-opus-5-5', false));
    expect(res.status).toBe(200);
    expect(res.streaming).toBe(false);
    const msg = JSON.parse(text);
    expect(msg).toMatchObject({ type: 'message', model: 'claude-opus-5-5' });
    const [entry] = emu.billing.list();
    expect(entry).toMatchObject({ provider: 'bedrock', regional: true, clientRequestId: 'req_test_1' });
    expect(read.usage!.tokens).toEqual({ ...entry!.usage });
    expect(billedCost('claude-opus-5-5', read.usage!, true)).toBe(entry!.costMicros);
  });

  it('streams as Anthropic SSE; the stream reader sees the billed usage, priced to the µ$', async () => {
    const { res, text, read } = await call(
      bedrock,
      request('claude-sonnet-5-5', true, 'stream it'),
      'global',
    );
    expect(res.status).toBe(200);
    expect(res.streaming).toBe(true);
    expect(res.headers['content-type']).toContain('text/event-stream');
    expect(text.startsWith('event: message_start\ndata: ')).toBe(true);
    expect(text).toContain('event: content_block_delta');
    expect(text).toContain('event: message_stop');
    const [entry] = emu.billing.list();
    expect(entry!.regional).toBeUndefined();
    expect(read.usage!.tokens).toEqual({ ...entry!.usage });
    expect(billedCost('claude-sonnet-5-5', read.usage!, false)).toBe(entry!.costMicros);
  });

  it('moves anthropic-beta headers into the body the way Bedrock takes them (a beta-gated feature works)', async () => {
    const fast = Buffer.from(
      JSON.stringify({
        model: 'claude-opus-5',
        max_tokens: 32,
        speed: 'fast',
        messages: [{ role: 'user', content: 'hi' }],
      }),
    );
    const without = await call(bedrock, fast);
    expect(without.res.status).toBe(400);
    const res = await bedrock.send({
      body: fast,
      headers: { 'anthropic-beta': 'context-management-2025-06-27, fast-mode-2026-02-01' },
    });
    expect(res.status).toBe(200);
    await readAll(res.body);
    expect(emu.billing.list()[0]).toMatchObject({ speed: 'fast', provider: 'bedrock' });
  });

  it("sends Bedrock's anthropic_version, or the caller's newer API version", async () => {
    const bodies: Array<Record<string, unknown>> = [];
    const served = await listenDual(
      async (req) => {
        bodies.push(JSON.parse(await req.text()));
        return Response.json({ type: 'message', usage: { input_tokens: 1, output_tokens: 1 } });
      },
      0,
      '127.0.0.1',
    );
    const p = await openProvider(
      settings(
        { region: 'us-east-1', accessKeyId: 'AKIA1', secretAccessKey: 's' },
        `http://127.0.0.1:${served.port}`,
      ),
    );
    for (const v of [undefined, '2023-06-01', '2026-10-21']) {
      const res = await p.send({
        body: request('claude-opus-5-5', false),
        headers: v ? { 'anthropic-version': v } : {},
      });
      await readAll(res.body);
    }
    expect(bodies.map((b) => b.anthropic_version)).toEqual([
      'bedrock-2023-05-31',
      'bedrock-2023-05-31',
      '2026-10-21',
    ]);
    expect(bodies.every((b) => !('model' in b) && !('stream' in b))).toBe(true);
    await p.close();
    await served.close();
  });

  it('answers an injected 429 as an Anthropic rate_limit_error envelope', async () => {
    const r = await fetch(`${server.url}/_emulator/faults`, {
      method: 'POST',
      headers: { 'x-api-key': emu.adminKey, 'content-type': 'application/json' },
      body: JSON.stringify({ status: 429, message: 'Too many tokens, please wait before trying again.' }),
    });
    expect(r.status).toBe(200);
    const { res, text, read } = await call(bedrock, request('claude-opus-5-5', false));
    expect(res.status).toBe(429);
    expect(JSON.parse(text)).toEqual({
      type: 'error',
      error: {
        type: 'rate_limit_error',
        message: 'ThrottlingException: Too many tokens, please wait before trying again.',
      },
    });
    expect(read.errorType).toBe('rate_limit_error');
    expect(emu.billing.calls).toBe(0);
  });

  it('answers an injected 529 as an overloaded_error envelope (Bedrock: ServiceUnavailableException)', async () => {
    emu.injectFault({ status: 529 });
    const { res, read } = await call(bedrock, request('claude-opus-5-5', true));
    expect(res.status).toBe(503);
    expect(res.streaming).toBe(false);
    expect(read.errorType).toBe('overloaded_error');
  });

  it('turns an error after the 200 into an Anthropic SSE error event, not billed', async () => {
    emu.script([{ reply: { streamError: 529, text: 'a long enough answer to be cut in half midway' } }]);
    const { res, text, read } = await call(bedrock, request('claude-opus-5-5', true));
    expect(res.status).toBe(200);
    expect(text).toContain('event: error\ndata: {"type":"error","error":{"type":"overloaded_error"');
    expect(read.errorType).toBe('overloaded_error');
    expect(emu.billing.calls).toBe(0);
  });

  it('refuses an unknown model with a 400 naming it, without calling Bedrock', async () => {
    const { res, text } = await call(bedrock, request('gpt-9', false));
    expect(res.status).toBe(400);
    expect(JSON.parse(text).error.message).toContain('"gpt-9"');
  });

  it("with the wrong secret, Bedrock's 403 becomes an authentication_error", async () => {
    const wrong = await openProvider(
      settings(
        { region: 'us-east-1', accessKeyId: emu.awsCredentials.accessKeyId, secretAccessKey: 'nope' },
        `${server.url}/bedrock`,
      ),
    );
    const { res, read } = await call(wrong, request('claude-opus-5-5', false));
    expect(res.status).toBe(401);
    expect(read.errorType).toBe('authentication_error');
    await wrong.close();
  });

  it('counts tokens with Bedrock CountTokens, equal to the input a call is billed for', async () => {
    const body = {
      model: 'claude-opus-5-5',
      max_tokens: 64,
      messages: [{ role: 'user', content: 'count me' }],
    };
    const n = await bedrock.countTokens(body);
    await call(bedrock, Buffer.from(JSON.stringify(body)));
    const u = emu.billing.list()[0]!.usage;
    expect(n).toBe(u.input + u.cacheRead + u.cacheWrite5m + u.cacheWrite1h);
  });
});

describe('BedrockProvider on a broken or slow Bedrock', () => {
  it('a stream cut inside a frame ends with an api_error event, after passing on (and reading) what came before', async () => {
    const start = {
      type: 'message_start',
      message: { id: 'm', usage: { input_tokens: 321, output_tokens: 1 } },
    };
    const served = await listenDual(
      () => {
        const whole = chunkMessage(JSON.stringify(start));
        const half = chunkMessage(JSON.stringify({ type: 'ping' })).subarray(0, 9);
        const body = new ReadableStream<Uint8Array>({
          start(c) {
            c.enqueue(whole);
            c.enqueue(half);
            c.close();
          },
        });
        return new Response(body, { headers: { 'content-type': 'application/vnd.amazon.eventstream' } });
      },
      0,
      '127.0.0.1',
    );
    const p = (await openProvider(
      settings(
        { region: 'us-east-1', accessKeyId: 'AKIA1', secretAccessKey: 's' },
        `http://127.0.0.1:${served.port}`,
      ),
    )) as BedrockProvider;
    const res = await p.send({ body: request('claude-opus-5-5', true) });
    const reader = p.streamReader();
    const chunks: Buffer[] = [];
    for await (const c of res.body) {
      reader.feed(c as Buffer);
      chunks.push(c as Buffer);
    }
    const text = Buffer.concat(chunks).toString();
    expect(text.startsWith('event: message_start\n')).toBe(true);
    expect(text).toContain('"message":"the Bedrock event stream broke off inside a message"');
    expect(reader.errorType).toBe('api_error');
    expect(reader.usage().tokens.input).toBe(321);
    await p.close();
    await served.close();
  });

  it('an aborted call rejects as aborted; a silent Bedrock as a timeout', async () => {
    emu.script([{ reply: { latencyMs: 3_000 } }]);
    const ac = new AbortController();
    const pending = bedrock.send({ body: request('claude-opus-5-5', false), signal: ac.signal });
    ac.abort();
    await expect(pending).rejects.toMatchObject({ name: 'ProviderError', kind: 'aborted' });
    const quick = await openProvider({
      ...settings({ region: 'us-east-1', ...emu.awsCredentials }, `${server.url}/bedrock`),
      timeoutMs: 100,
    });
    await expect(quick.send({ body: request('claude-opus-5-5', false) })).rejects.toMatchObject({
      kind: 'timeout',
    });
    await quick.close();
  });
});

describe('BedrockProvider settings', () => {
  it('requires a region unless a baseUrl is given, naming the field', async () => {
    await expect(openProvider(settings({}))).rejects.toThrow('providers.bedrock.region: required');
  });

  it('refuses an unknown profile and half a static key pair', async () => {
    await expect(openProvider(settings({ region: 'us-east-1', profile: 'mars' }))).rejects.toThrow(
      'providers.bedrock.profile',
    );
    await expect(openProvider(settings({ region: 'us-east-1', accessKeyId: 'AKIA1' }))).rejects.toThrow(
      'providers.bedrock.secretAccessKey: required',
    );
  });

  it('builds model ids from the profile, the call geo and per-model overrides', async () => {
    const p = (await openProvider(
      settings({
        region: 'eu-west-1',
        profile: 'eu',
        models: { 'claude-opus-5': 'arn:aws:bedrock:eu-west-1:1:application-inference-profile/x' },
      }),
    )) as BedrockProvider;
    expect(p.modelId('claude-opus-5-5')).toBe('eu.anthropic.claude-opus-5-5');
    expect(p.modelId('claude-opus-5-5', 'global')).toBe('global.anthropic.claude-opus-5-5');
    expect(p.modelId('claude-opus-5')).toBe('arn:aws:bedrock:eu-west-1:1:application-inference-profile/x');
    await p.close();
  });
});

describe('inference profiles', () => {
  it("lists the region's geographic and global profiles per model, ListInferenceProfiles-shaped", () => {
    const { inferenceProfileSummaries: list } = listInferenceProfiles(
      ['claude-opus-5-5', 'claude-haiku-4-5'],
      'us-east-1',
      { accountId: '123456789012' },
    );
    expect(list.map((p) => p.inferenceProfileId)).toEqual([
      'us.anthropic.claude-opus-5-5',
      'global.anthropic.claude-opus-5-5',
      'us.anthropic.claude-haiku-4-5-20251001-v1:0',
      'global.anthropic.claude-haiku-4-5-20251001-v1:0',
    ]);
    expect(list[0]).toMatchObject({
      inferenceProfileName: 'US Anthropic Claude Opus 5.5',
      inferenceProfileArn:
        'arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-opus-5-5',
      models: [{ modelArn: 'arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-opus-5-5' }],
      status: 'ACTIVE',
      type: 'SYSTEM_DEFINED',
    });
  });

  it('the emulator answers GET /bedrock/inference-profiles, SigV4-signed, with its models', async () => {
    const { SignatureV4 } = await import('@smithy/signature-v4');
    const { Sha256 } = await import('@aws-crypto/sha256-js');
    const url = new URL(`${server.url}/bedrock/inference-profiles?type=SYSTEM_DEFINED`);
    const signer = new SignatureV4({
      service: 'bedrock',
      region: 'eu-west-1',
      credentials: emu.awsCredentials,
      sha256: Sha256,
    });
    const signed = await signer.sign({
      method: 'GET',
      protocol: 'http:',
      hostname: url.hostname,
      port: Number(url.port),
      path: url.pathname,
      query: { type: 'SYSTEM_DEFINED' },
      headers: { host: url.host },
    });
    const res = await fetch(url, { headers: signed.headers });
    expect(res.status).toBe(200);
    const ids = (
      (await res.json()) as { inferenceProfileSummaries: Array<{ inferenceProfileId: string }> }
    ).inferenceProfileSummaries.map((p) => p.inferenceProfileId);
    expect(ids).toContain('eu.anthropic.claude-opus-5-5');
    expect(ids).toContain('global.anthropic.claude-sonnet-5-5');
    const unsigned = await fetch(url);
    expect(unsigned.status).toBe(403);
    expect(unsigned.headers.get('x-amzn-errortype')).toBe('MissingAuthenticationTokenException');
  });
});

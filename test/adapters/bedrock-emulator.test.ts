import AnthropicBedrock from '@anthropic-ai/bedrock-sdk';
import {
  BedrockRuntimeClient,
  ConverseCommand,
  ConverseStreamCommand,
  InvokeModelCommand,
  InvokeModelWithResponseStreamCommand,
  ValidationException,
} from '@aws-sdk/client-bedrock-runtime';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  createEmulator,
  DEFAULT_AWS_ACCESS_KEY_ID,
  type Emulator,
  type Listening,
  priceCall,
  resolveModel,
} from '../../adapters/emulator/index.ts';

let emu: Emulator;
let server: Listening;
let aws: BedrockRuntimeClient;
let sdk: AnthropicBedrock;

const body = (text: string, max = 64) =>
  JSON.stringify({
    anthropic_version: 'bedrock-2023-05-31',
    max_tokens: max,
    messages: [{ role: 'user', content: text }],
  });

beforeAll(async () => {
  emu = createEmulator();
  server = await emu.listen();
  aws = new BedrockRuntimeClient({
    region: 'us-east-1',
    endpoint: `${server.url}/bedrock`,
    credentials: emu.awsCredentials,
    maxAttempts: 1,
  });
  sdk = new AnthropicBedrock({
    baseURL: `${server.url}/bedrock`,
    awsAccessKey: emu.awsCredentials.accessKeyId,
    awsSecretKey: emu.awsCredentials.secretAccessKey,
    awsRegion: 'us-east-1',
    maxRetries: 0,
  });
});
afterAll(async () => {
  aws.destroy();
  await server.close();
});
beforeEach(() => {
  emu.billing.clear();
  emu.clearFaults();
  emu.script([]);
});

const decode = (b: Uint8Array | undefined) => JSON.parse(Buffer.from(b ?? []).toString('utf8'));

describe('the emulator speaks Bedrock Runtime to @aws-sdk/client-bedrock-runtime', () => {
  it('InvokeModel answers the Anthropic message and bills it to provider bedrock at the regional price', async () => {
    const out = await aws.send(
      new InvokeModelCommand({
        modelId: 'us.anthropic.claude-opus-5-5',
        contentType: 'application/json',
        body: body('Say hello'),
      }),
    );
    const msg = decode(out.body);
    expect(msg.type).toBe('message');
    expect(msg.content[0].text.length).toBeGreaterThan(0);
    const [entry] = emu.billing.list();
    expect(entry).toMatchObject({ provider: 'bedrock', regional: true, model: 'claude-opus-5-5' });
    expect(entry!.apiKey).toBe(DEFAULT_AWS_ACCESS_KEY_ID);
    expect(entry!.usage.output).toBe(msg.usage.output_tokens);
    const regional = priceCall(resolveModel('claude-opus-5-5')!, entry!.usage, { regional: true }).micros;
    expect(entry!.costMicros).toBe(regional);
    expect(emu.billing.total('bedrock')).toBe(regional);
    expect(emu.billing.total('anthropic')).toBe(0);
  });

  it('bills a global-profile call at the global price, and a dated versioned id resolves', async () => {
    await aws.send(
      new InvokeModelCommand({
        modelId: 'global.anthropic.claude-haiku-4-5-20251001-v1:0',
        body: body('hi'),
      }),
    );
    const [entry] = emu.billing.list();
    expect(entry).toMatchObject({ provider: 'bedrock', model: 'claude-haiku-4-5-20251001' });
    expect(entry!.regional).toBeUndefined();
    expect(entry!.costMicros).toBe(priceCall(resolveModel('claude-haiku-4-5')!, entry!.usage).micros);
  });

  it('InvokeModelWithResponseStream streams the answer as chunks, with invocation metrics on the last', async () => {
    const out = await aws.send(
      new InvokeModelWithResponseStreamCommand({
        modelId: 'eu.anthropic.claude-sonnet-5-5',
        body: body('Stream'),
      }),
    );
    const events: Array<Record<string, unknown>> = [];
    for await (const part of out.body!) if (part.chunk) events.push(decode(part.chunk.bytes));
    expect(events[0]?.type).toBe('message_start');
    const text = events
      .filter((e) => e.type === 'content_block_delta')
      .map((e) => (e.delta as { text?: string }).text ?? '')
      .join('');
    expect(text.length).toBeGreaterThan(0);
    const stop = events.at(-1)!;
    expect(stop.type).toBe('message_stop');
    const [entry] = emu.billing.list();
    expect(stop['amazon-bedrock-invocationMetrics']).toMatchObject({
      inputTokenCount: entry!.usage.input,
      outputTokenCount: entry!.usage.output,
    });
    expect(entry).toMatchObject({ provider: 'bedrock', regional: true, stream: true });
  });

  it('refuses a wrong secret with the typed 403 the SDK knows, and bills nothing', async () => {
    const bad = new BedrockRuntimeClient({
      region: 'us-east-1',
      endpoint: `${server.url}/bedrock`,
      credentials: { accessKeyId: DEFAULT_AWS_ACCESS_KEY_ID, secretAccessKey: 'not-the-secret' },
      maxAttempts: 1,
    });
    const err = await bad
      .send(new InvokeModelCommand({ modelId: 'us.anthropic.claude-opus-5-5', body: body('hi') }))
      .then(
        () => undefined,
        (e: unknown) => e as Error & { $metadata?: { httpStatusCode?: number } },
      );
    expect(err).toBeInstanceOf(Error);
    expect(err?.name).toBe('InvalidSignatureException');
    expect(err?.$metadata?.httpStatusCode).toBe(403);
    expect(emu.billing.calls).toBe(0);
    bad.destroy();
  });

  it('refuses an unknown model id with a ValidationException', async () => {
    const err = await aws
      .send(new InvokeModelCommand({ modelId: 'us.anthropic.claude-nope-9', body: body('hi') }))
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ValidationException);
    expect((err as Error).message).toBe('The provided model identifier is invalid.');
  });

  it('refuses a body that carries model or stream, as Bedrock does', async () => {
    const withModel = JSON.stringify({ ...JSON.parse(body('hi')), model: 'claude-opus-5-5' });
    const err = await aws
      .send(new InvokeModelCommand({ modelId: 'us.anthropic.claude-opus-5-5', body: withModel }))
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ValidationException);
    expect((err as Error).message).toContain('extraneous key [model]');
  });
});

describe('the emulator speaks Bedrock Runtime to @anthropic-ai/bedrock-sdk', () => {
  it('messages.create answers, billed to bedrock', async () => {
    const msg = await sdk.messages.create({
      model: 'us.anthropic.claude-opus-5-5',
      max_tokens: 64,
      messages: [{ role: 'user', content: 'Hello' }],
    });
    expect(msg.content[0]?.type).toBe('text');
    const [entry] = emu.billing.list();
    expect(entry).toMatchObject({ provider: 'bedrock', regional: true });
    expect(entry!.usage.output).toBe(msg.usage.output_tokens);
  });

  it('streams text through the event-stream framing', async () => {
    const stream = sdk.messages.stream({
      model: 'global.anthropic.claude-sonnet-5-5',
      max_tokens: 64,
      messages: [{ role: 'user', content: 'Stream please' }],
    });
    let text = '';
    stream.on('text', (t) => {
      text += t;
    });
    const final = await stream.finalMessage();
    expect(text.length).toBeGreaterThan(0);
    expect(final.content[0]?.type === 'text' && final.content[0].text).toBe(text);
    const [entry] = emu.billing.list();
    expect(entry!.usage.output).toBe(final.usage.output_tokens);
    expect(entry!.regional).toBeUndefined();
  });

  it('a client that abandons a stream is billed for what was generated so far, as on the Messages face', async () => {
    emu.script([{ reply: { text: 'word '.repeat(400), deltaDelayMs: 5 } }]);
    const stream = sdk.messages.stream({
      model: 'us.anthropic.claude-opus-5-5',
      max_tokens: 4000,
      messages: [{ role: 'user', content: 'long' }],
    });
    await new Promise<void>((resolve) => stream.once('text', () => resolve()));
    stream.abort();
    await stream.done().catch(() => undefined);
    await vi.waitFor(() => expect(emu.billing.calls).toBe(1));
    const [entry] = emu.billing.list();
    expect(entry).toMatchObject({ provider: 'bedrock', aborted: true, stream: true });
    expect(entry!.usage.output).toBeGreaterThan(0);
    expect(entry!.usage.output).toBeLessThan(400);
  });

  it('refuses a wrong secret with a 403 PermissionDeniedError', async () => {
    const bad = new AnthropicBedrock({
      baseURL: `${server.url}/bedrock`,
      awsAccessKey: DEFAULT_AWS_ACCESS_KEY_ID,
      awsSecretKey: 'wrong',
      awsRegion: 'us-east-1',
      maxRetries: 0,
    });
    const err = await bad.messages
      .create({
        model: 'us.anthropic.claude-opus-5-5',
        max_tokens: 8,
        messages: [{ role: 'user', content: 'x' }],
      })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AnthropicBedrock.PermissionDeniedError);
    expect((err as Error).message).toContain('signature we calculated does not match');
  });

  it('turns a fault injected mid-call into the Bedrock error the SDK types', async () => {
    emu.injectFault({ status: 529 });
    const err = await sdk.messages
      .create({
        model: 'us.anthropic.claude-opus-5-5',
        max_tokens: 8,
        messages: [{ role: 'user', content: 'x' }],
      })
      .then(
        () => undefined,
        (e: unknown) => e as { status?: number },
      );
    expect(err?.status).toBe(503);
    expect(emu.billing.calls).toBe(0);
  });
});

describe('Converse and ConverseStream (@aws-sdk/client-bedrock-runtime)', () => {
  it('Converse answers in Converse shape; its usage equals the bill', async () => {
    const out = await aws.send(
      new ConverseCommand({
        modelId: 'us.anthropic.claude-sonnet-5-5',
        system: [{ text: 'Be brief.' }],
        messages: [{ role: 'user', content: [{ text: 'Hello there' }] }],
        inferenceConfig: { maxTokens: 100 },
      }),
    );
    expect(out.stopReason).toBe('end_turn');
    expect(out.output?.message?.content?.[0]?.text?.length).toBeGreaterThan(0);
    const [entry] = emu.billing.list();
    expect(entry).toMatchObject({ provider: 'bedrock', regional: true, model: 'claude-sonnet-5-5' });
    expect(out.usage?.inputTokens).toBe(entry!.usage.input);
    expect(out.usage?.outputTokens).toBe(entry!.usage.output);
  });

  it('ConverseStream streams a tool call; the metadata event carries the billed usage', async () => {
    emu.script([{ reply: { toolUse: [{ name: 'get_weather', input: { city: 'Paris' } }] } }]);
    const out = await aws.send(
      new ConverseStreamCommand({
        modelId: 'global.anthropic.claude-opus-5-5',
        messages: [{ role: 'user', content: [{ text: 'Weather in Paris?' }] }],
        toolConfig: {
          tools: [
            {
              toolSpec: {
                name: 'get_weather',
                description: 'Weather for a city',
                inputSchema: { json: { type: 'object', properties: { city: { type: 'string' } } } },
              },
            },
          ],
        },
        inferenceConfig: { maxTokens: 200 },
      }),
    );
    let name: string | undefined;
    let input = '';
    let stop: string | undefined;
    let usage: { inputTokens?: number; outputTokens?: number } | undefined;
    for await (const e of out.stream!) {
      if (e.contentBlockStart?.start?.toolUse) name = e.contentBlockStart.start.toolUse.name;
      if (e.contentBlockDelta?.delta?.toolUse) input += e.contentBlockDelta.delta.toolUse.input ?? '';
      if (e.messageStop) stop = e.messageStop.stopReason;
      if (e.metadata) usage = e.metadata.usage;
    }
    expect(name).toBe('get_weather');
    expect(JSON.parse(input)).toEqual({ city: 'Paris' });
    expect(stop).toBe('tool_use');
    const [entry] = emu.billing.list();
    expect(usage).toMatchObject({ inputTokens: entry!.usage.input, outputTokens: entry!.usage.output });
    expect(entry!.regional).toBeUndefined();
  });

  it('refuses a Converse body it cannot read with a ValidationException', async () => {
    const err = await aws
      .send(
        new ConverseCommand({
          modelId: 'us.anthropic.claude-opus-5-5',
          messages: [
            { role: 'user', content: [{ video: { format: 'mp4', source: { bytes: new Uint8Array(1) } } }] },
          ],
        }),
      )
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(err).toBeInstanceOf(ValidationException);
    expect((err as Error).message).toContain('unsupported content block');
  });
});

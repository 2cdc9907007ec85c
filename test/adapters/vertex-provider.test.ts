import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createEmulator, DEFAULT_ADMIN_KEY, type Emulator } from '../../adapters/emulator/index.ts';
import { type Provider, ProviderError, readAll } from '../../adapters/provider.ts';
import { openProvider } from '../../adapters/providers.ts';
import { PriceTable } from '../../runtime/pricing/pricing.ts';

const TOKEN = 'vertex-provider-token';
const dir = mkdtempSync(join(tmpdir(), 'cp-vertex-'));
let emu: Emulator;
let url: string;
let close: () => Promise<void>;

beforeAll(async () => {
  emu = createEmulator({ apiKeys: { vertex: TOKEN } });
  ({ url, close } = await emu.listen());
});
afterAll(async () => {
  await close();
  rmSync(dir, { recursive: true, force: true });
});
beforeEach(() => {
  emu.billing.clear();
  emu.clearFaults();
});

const open = (options: Record<string, unknown>, timeoutMs = 10_000): Promise<Provider> =>
  openProvider({
    kind: 'vertex',
    name: 'vertex',
    baseUrl: `${url}/vertex`,
    options: { project: 'my-project', region: 'global', ...options },
    timeoutMs,
    dataDir: () => dir,
    warn: () => undefined,
  });

const body = (o: Record<string, unknown>) =>
  Buffer.from(JSON.stringify({ max_tokens: 64, messages: [{ role: 'user', content: 'hello' }], ...o }));

const prices = new PriceTable();

describe('VertexProvider against the emulator', () => {
  let p: Provider;
  beforeAll(async () => {
    p = await open({ accessToken: TOKEN });
  });
  afterAll(() => p.close());

  it('sends a canonical body and answers a canonical message whose usage and cost equal the bill', async () => {
    const res = await p.send({
      body: body({
        model: 'claude-haiku-4-5',
        messages: [{ role: 'user', content: 'hi [[emulator:output_tokens=33]]' }],
      }),
      requestId: 'req-vertex-1',
    });
    expect(res.status).toBe(200);
    expect(res.streaming).toBe(false);
    const buf = await readAll(res.body);
    const message = JSON.parse(buf.toString('utf8')) as { type: string; model: string };
    expect(message.type).toBe('message');
    const { usage } = p.answer(res.status, buf);
    const [entry] = emu.billing.list();
    expect(entry?.provider).toBe('vertex');
    expect(entry?.model).toBe('claude-haiku-4-5-20251001');
    expect(entry?.clientRequestId).toBe('req-vertex-1');
    expect(usage?.tokens).toEqual(entry?.usage);
    expect(prices.cost('claude-haiku-4-5', usage!.tokens, entry!.at)).toBe(entry?.costMicros);
  });

  it('streams from a regional location named by geo, usage read as it passes, cost 1.1× to the µ$', async () => {
    const res = await p.send({
      body: body({
        model: 'claude-sonnet-5-5',
        stream: true,
        messages: [{ role: 'user', content: 'stream [[emulator:output_tokens=40]]' }],
      }),
      geo: 'us-east5',
    });
    expect(res.status).toBe(200);
    expect(res.streaming).toBe(true);
    const reader = p.streamReader();
    let sawStop = false;
    for await (const chunk of res.body) {
      reader.feed(chunk as Buffer);
      if (reader.finalAt(chunk as Buffer) !== -1) sawStop = true;
    }
    expect(sawStop).toBe(true);
    const [entry] = emu.billing.list();
    expect(entry?.regional).toBe(true);
    expect(reader.usage().tokens).toEqual(entry?.usage);
    expect(reader.usage().tokens.output).toBe(40);
    // Regional endpoints are 1.1× on every class, the same factor as `inference_geo: "us"`.
    expect(prices.cost('claude-sonnet-5-5', reader.usage().tokens, entry!.at, { usOnly: true })).toBe(
      entry?.costMicros,
    );
  });

  it('counts tokens on count-tokens:rawPredict, equal to the input a call is billed', async () => {
    const ask = { model: 'claude-opus-5-5', messages: [{ role: 'user', content: 'how many tokens am I?' }] };
    const n = await p.countTokens({ ...ask, max_tokens: 10 });
    const res = await p.send({ body: body(ask) });
    const { usage } = p.answer(res.status, await readAll(res.body));
    expect(n).toBe(usage?.tokens.input);
  });

  it.each([
    [529, 'overloaded_error'],
    [429, 'rate_limit_error'],
    [500, 'api_error'],
  ])('turns a Vertex %i in Google’s envelope into the Anthropic envelope %s', async (status, type) => {
    emu.injectFault({ status, message: `injected ${status}` });
    const res = await p.send({ body: body({ model: 'claude-opus-5-5' }) });
    expect(res.status).toBe(status);
    expect(res.streaming).toBe(false);
    const buf = await readAll(res.body);
    expect(JSON.parse(buf.toString('utf8'))).toEqual({
      type: 'error',
      error: { type, message: `injected ${status}` },
    });
    expect(p.answer(status, buf).errorType).toBe(type);
    expect(emu.billing.calls).toBe(0);
  });

  it('answers a refused token as an Anthropic authentication_error', async () => {
    const bad = await open({ accessToken: 'wrong' });
    const res = await bad.send({ body: body({ model: 'claude-opus-5-5' }) });
    expect(res.status).toBe(401);
    const env = JSON.parse((await readAll(res.body)).toString('utf8')) as { error: { type: string } };
    expect(env.error.type).toBe('authentication_error');
    await bad.close();
  });

  it('answers a body without model as a 400 naming model, without calling Vertex', async () => {
    const res = await p.send({ body: Buffer.from(JSON.stringify({ max_tokens: 5, messages: [] })) });
    expect(res.status).toBe(400);
    const env = JSON.parse((await readAll(res.body)).toString('utf8')) as { error: { message: string } };
    expect(env.error.message).toMatch(/^model: required/);
  });

  it('times out a call that sends no bytes in time, and honours an abort signal', async () => {
    const slow = await open({ accessToken: TOKEN }, 100);
    const late = body({
      model: 'claude-opus-5-5',
      messages: [{ role: 'user', content: '[[emulator:latency=3000]]' }],
    });
    const timedOut = await slow.send({ body: late }).catch((e: unknown) => e);
    expect(timedOut).toBeInstanceOf(ProviderError);
    expect((timedOut as ProviderError).kind).toBe('timeout');
    const ctl = new AbortController();
    const pending = p.send({ body: late, signal: ctl.signal });
    ctl.abort();
    const aborted = await pending.catch((e: unknown) => e);
    expect((aborted as ProviderError).kind).toBe('aborted');
    await slow.close();
  });

  it('names the field it rejects in its options', async () => {
    await expect(open({ project: undefined })).rejects.toThrow('providers.vertex.project: required');
    await expect(open({ models: { 'claude-x': 5 } })).rejects.toThrow('providers.vertex.models.claude-x');
  });
});

describe('VertexProvider with a service-account key file (offline ADC)', () => {
  let proxy: Server;
  let tokenUri: string;
  let grants = 0;

  beforeAll(async () => {
    // Counts the token requests on their way to the emulator's token endpoint.
    proxy = createServer(async (req, res) => {
      grants++;
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      const up = await fetch(`${url}/vertex/oauth2/token`, {
        method: 'POST',
        headers: { 'content-type': String(req.headers['content-type']) },
        body: Buffer.concat(chunks),
      });
      res.writeHead(up.status, { 'content-type': 'application/json' });
      res.end(Buffer.from(await up.arrayBuffer()));
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    tokenUri = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}/vertex/oauth2/token`;
  });
  afterAll(() => new Promise<void>((r) => proxy.close(() => r())));

  const keyFile = (email: string, privateKey: string) => {
    const path = join(dir, `${email}.json`);
    writeFileSync(
      path,
      JSON.stringify({
        type: 'service_account',
        project_id: 'my-project',
        private_key_id: 'k1',
        private_key: privateKey,
        client_email: email,
        token_uri: tokenUri,
      }),
    );
    return path;
  };

  it('gets a token from the key file’s token_uri once and bills its calls to the service account', async () => {
    const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const email = 'agent@my-project.iam.gserviceaccount.com';
    const reg = await fetch(`${url}/_emulator/vertex/service-accounts`, {
      method: 'POST',
      headers: { 'x-api-key': DEFAULT_ADMIN_KEY, 'content-type': 'application/json' },
      body: JSON.stringify({
        client_email: email,
        public_key: publicKey.export({ type: 'spki', format: 'pem' }),
      }),
    });
    expect(reg.status).toBe(200);
    const p = await open({
      keyFile: keyFile(email, privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()),
    });
    grants = 0;
    for (const stream of [false, true]) {
      const res = await p.send({ body: body({ model: 'claude-opus-5-5', stream }) });
      expect(res.status).toBe(200);
      await readAll(res.body);
    }
    expect(grants).toBe(1);
    expect(emu.billing.list().map((e) => e.apiKey)).toEqual([email, email]);
    await p.close();
  });

  it('takes the service-account key GOOGLE_APPLICATION_CREDENTIALS names when no keyFile is given (ADC)', async () => {
    const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const email = 'adc@my-project.iam.gserviceaccount.com';
    await fetch(`${url}/_emulator/vertex/service-accounts`, {
      method: 'POST',
      headers: { 'x-api-key': DEFAULT_ADMIN_KEY, 'content-type': 'application/json' },
      body: JSON.stringify({
        client_email: email,
        public_key: publicKey.export({ type: 'spki', format: 'pem' }),
      }),
    });
    const before = process.env.GOOGLE_APPLICATION_CREDENTIALS;
    process.env.GOOGLE_APPLICATION_CREDENTIALS = keyFile(
      email,
      privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    );
    try {
      const p = await open({});
      const res = await p.send({ body: body({ model: 'claude-opus-5-5' }) });
      expect(res.status).toBe(200);
      await readAll(res.body);
      expect(emu.billing.list().map((e) => e.apiKey)).toEqual([email]);
      await p.close();
    } finally {
      if (before === undefined) delete process.env.GOOGLE_APPLICATION_CREDENTIALS;
      else process.env.GOOGLE_APPLICATION_CREDENTIALS = before;
    }
  });

  it('accepts the key file the emulator generates', async () => {
    const reg = await fetch(`${url}/_emulator/vertex/service-accounts`, {
      method: 'POST',
      headers: { 'x-api-key': DEFAULT_ADMIN_KEY, 'content-type': 'application/json' },
      body: JSON.stringify({ client_email: 'generated@emulator-project.iam.gserviceaccount.com' }),
    });
    const sa = (await reg.json()) as { token_uri: string; private_key: string };
    expect(sa.token_uri).toBe(`${url}/vertex/oauth2/token`);
    const path = join(dir, 'generated.json');
    writeFileSync(path, JSON.stringify(sa));
    const p = await open({ keyFile: path });
    const res = await p.send({ body: body({ model: 'claude-haiku-5-5' }) });
    expect(res.status).toBe(200);
    await readAll(res.body);
    await p.close();
  });

  it('refuses a JWT signed with another key than the one registered for the account', async () => {
    const registered = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const other = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const email = 'impostor@my-project.iam.gserviceaccount.com';
    await fetch(`${url}/_emulator/vertex/service-accounts`, {
      method: 'POST',
      headers: { 'x-api-key': DEFAULT_ADMIN_KEY, 'content-type': 'application/json' },
      body: JSON.stringify({
        client_email: email,
        public_key: registered.publicKey.export({ type: 'spki', format: 'pem' }),
      }),
    });
    const p = await open({
      keyFile: keyFile(email, other.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()),
    });
    const err = await p.send({ body: body({ model: 'claude-opus-5-5' }) }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProviderError);
    expect((err as Error).message).toMatch(/invalid_grant: Invalid JWT Signature/);
    expect(emu.billing.calls).toBe(0);
    await p.close();
  });

  it('fails a call closed when the token endpoint refuses the key (unregistered account)', async () => {
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const p = await open({
      keyFile: keyFile(
        'stranger@x.iam.gserviceaccount.com',
        privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
      ),
    });
    const err = await p.send({ body: body({ model: 'claude-opus-5-5' }) }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProviderError);
    expect((err as Error).message).toMatch(/Google credentials: .*account not found/);
    expect(emu.billing.calls).toBe(0);
    await p.close();
  });
});

import AnthropicBedrock from '@anthropic-ai/bedrock-sdk';
import {
  BedrockRuntimeClient,
  InvokeModelCommand,
  ServiceQuotaExceededException,
  ThrottlingException,
} from '@aws-sdk/client-bedrock-runtime';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  anthropicErrorOf,
  bedrockErrorOf,
  budgetRefusal,
  errorTypeName,
} from '../../adapters/bedrock/errors.ts';
import { listenDual, type Served } from '../../adapters/http/h2c.ts';

describe('Bedrock errors → Anthropic envelopes', () => {
  const cases: Array<[number, string, number, string]> = [
    [429, 'ThrottlingException', 429, 'rate_limit_error'],
    [400, 'ServiceQuotaExceededException', 429, 'rate_limit_error'],
    [400, 'ValidationException', 400, 'invalid_request_error'],
    [403, 'AccessDeniedException', 403, 'permission_error'],
    [403, 'UnrecognizedClientException', 401, 'authentication_error'],
    [403, 'InvalidSignatureException', 401, 'authentication_error'],
    [404, 'ResourceNotFoundException', 404, 'not_found_error'],
    [429, 'ModelNotReadyException', 529, 'overloaded_error'],
    [503, 'ServiceUnavailableException', 503, 'overloaded_error'],
    [500, 'InternalServerException', 500, 'api_error'],
    [424, 'ModelErrorException', 500, 'api_error'],
    [408, 'ModelTimeoutException', 504, 'timeout_error'],
    [418, 'SomethingNewException', 418, 'invalid_request_error'],
    [502, 'SomethingNewException', 502, 'api_error'],
  ];
  it.each(cases)('%i %s → %i %s', (status, name, want, type) => {
    const out = anthropicErrorOf(
      status,
      `${name}:http://internal.amazon.com/coral/com.amazon.bedrock/`,
      Buffer.from('{"message":"why"}'),
    );
    expect(out.status).toBe(want);
    expect(JSON.parse(out.body)).toEqual({ type: 'error', error: { type, message: `${name}: why` } });
  });

  it('keeps a body that is not JSON as the message, and reads the error type header bare or qualified', () => {
    const out = anthropicErrorOf(502, undefined, Buffer.from('<html>bad gateway</html>'));
    expect(JSON.parse(out.body).error).toEqual({ type: 'api_error', message: '<html>bad gateway</html>' });
    expect(errorTypeName('ThrottlingException')).toBe('ThrottlingException');
    expect(errorTypeName('aws.protocols#ThrottlingException:http://x')).toBe('ThrottlingException');
  });
});

describe('Anthropic envelopes → Bedrock errors (the gateway face)', () => {
  const env = (type: string, chokepoint?: object) =>
    JSON.stringify({ type: 'error', error: { type, message: 'm' }, ...(chokepoint ? { chokepoint } : {}) });
  const cases: Array<[number, string, object | undefined, number, string]> = [
    [400, 'invalid_request_error', undefined, 400, 'ValidationException'],
    [401, 'authentication_error', undefined, 403, 'UnrecognizedClientException'],
    [403, 'permission_error', undefined, 403, 'AccessDeniedException'],
    [404, 'not_found_error', undefined, 404, 'ResourceNotFoundException'],
    [429, 'rate_limit_error', undefined, 429, 'ThrottlingException'],
    [500, 'api_error', undefined, 500, 'InternalServerException'],
    [529, 'overloaded_error', undefined, 503, 'ServiceUnavailableException'],
    [429, 'rate_limit_error', { code: 'budget_exhausted' }, 400, 'ServiceQuotaExceededException'],
    [429, 'rate_limit_error', { code: 'time_box_exceeded' }, 400, 'ServiceQuotaExceededException'],
    [403, 'permission_error', { code: 'killed' }, 403, 'AccessDeniedException'],
    [409, 'invalid_request_error', { code: 'prefix_drift' }, 400, 'ValidationException'],
  ];
  it.each(cases)('%i %s %o → %i %s', (status, type, chokepoint, want, name) => {
    const out = bedrockErrorOf(status, env(type, chokepoint));
    expect(out.status).toBe(want);
    expect(out.headers['x-amzn-errortype']).toBe(name);
    expect(JSON.parse(out.body)).toEqual({ message: 'm', ...(chokepoint ? { chokepoint } : {}) });
  });
});

/** A Bedrock stand-in that answers every call with one error and counts the attempts. */
let served: Served;
let url: string;
let answer: { status: number; headers: Record<string, string>; body: string };
let attempts = 0;

beforeAll(async () => {
  served = await listenDual(
    async (req) => {
      attempts++;
      await req.arrayBuffer();
      return new Response(answer.body, { status: answer.status, headers: answer.headers });
    },
    0,
    '127.0.0.1',
  );
  url = `http://127.0.0.1:${served.port}`;
});
afterAll(() => served.close());
beforeEach(() => {
  attempts = 0;
});

const creds = { accessKeyId: 'AKIATEST', secretAccessKey: 'secret' };
const refusal = budgetRefusal("budget exhausted: seat 'alice' daily ceiling $10.00", {
  code: 'budget_exhausted',
  budget: { scope: 'seat:alice' },
});
const throttled = {
  ...bedrockErrorOf(
    429,
    JSON.stringify({ type: 'error', error: { type: 'rate_limit_error', message: 'slow down' } }),
  ),
};
throttled.headers = { ...throttled.headers, 'retry-after-ms': '1' };

async function viaAwsSdk(): Promise<unknown> {
  const client = new BedrockRuntimeClient({
    region: 'us-east-1',
    endpoint: url,
    credentials: creds,
    maxAttempts: 3,
  });
  try {
    return await client
      .send(new InvokeModelCommand({ modelId: 'us.anthropic.claude-opus-5-5', body: '{}' }))
      .then(
        () => undefined,
        (e: unknown) => e,
      );
  } finally {
    client.destroy();
  }
}

async function viaBedrockSdk(): Promise<unknown> {
  const client = new AnthropicBedrock({
    baseURL: url,
    awsAccessKey: creds.accessKeyId,
    awsSecretKey: creds.secretAccessKey,
    awsRegion: 'us-east-1',
    maxRetries: 2,
  });
  return client.messages
    .create({
      model: 'us.anthropic.claude-opus-5-5',
      max_tokens: 8,
      messages: [{ role: 'user', content: 'x' }],
    })
    .then(
      () => undefined,
      (e: unknown) => e,
    );
}

describe('a budget refusal on the Bedrock face is surfaced once, never retried', () => {
  it('@aws-sdk/client-bedrock-runtime: one attempt, a typed ServiceQuotaExceededException carrying the refusal', async () => {
    answer = refusal;
    const err = await viaAwsSdk();
    expect(attempts).toBe(1);
    expect(err).toBeInstanceOf(ServiceQuotaExceededException);
    expect((err as Error).message).toContain("seat 'alice' daily ceiling");
  });

  it('@anthropic-ai/bedrock-sdk: one attempt, a 400 BadRequestError whose body keeps the chokepoint object', async () => {
    answer = refusal;
    const err = await viaBedrockSdk();
    expect(attempts).toBe(1);
    expect(err).toBeInstanceOf(AnthropicBedrock.BadRequestError);
    expect((err as { error?: { chokepoint?: { code?: string } } }).error?.chokepoint?.code).toBe(
      'budget_exhausted',
    );
  });

  it('while a 429 ThrottlingException is retried by both (the counter counts)', async () => {
    answer = throttled;
    const aws = await viaAwsSdk();
    expect(aws).toBeInstanceOf(ThrottlingException);
    expect(attempts).toBe(3);
    attempts = 0;
    await viaBedrockSdk();
    expect(attempts).toBe(3);
  });
});

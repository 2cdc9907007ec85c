import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tracingFromEnv } from '../../../runtime/config/otel.ts';
import { runContext, type Tracer } from '../../../runtime/observability/tracing.ts';
import { type Harness, startHarness } from '../../helpers/harness.ts';
import { type ReceivedSpan, type Receiver, startReceiver } from './otlp-receiver.ts';

const WORKFLOWS = new URL('../../fixtures/approval-workflows', import.meta.url).pathname;
const PARENT_TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const PARENT_SPAN = '00f067aa0ba902b7';
const CACHED_SYSTEM = [
  { type: 'text' as const, text: 'Be concise. '.repeat(600), cache_control: { type: 'ephemeral' as const } },
];

const flush = (h: Harness) => (h.rt.traces as Tracer).flush();
const byName = (spans: ReceivedSpan[], name: string) => spans.filter((s) => s.name === name);

describe('OpenTelemetry traces over OTLP/HTTP (http/json)', () => {
  let h: Harness;
  let rx: Receiver;
  beforeAll(async () => {
    rx = await startReceiver();
    h = await startHarness({
      workflows: WORKFLOWS,
      env: {
        OTEL_EXPORTER_OTLP_ENDPOINT: `${rx.url}/`,
        OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
        OTEL_EXPORTER_OTLP_HEADERS: 'authorization=Bearer%20collector-token,x-tenant=cp',
        OTEL_SERVICE_NAME: 'chokepoint-test',
        OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment.name=test,service.namespace=ai',
      },
    });
  }, 60_000);
  afterAll(async () => {
    await h?.close();
    await rx?.close();
  });

  it('sends a model call span under the caller traceparent, with the GenAI and chokepoint attributes', async () => {
    const { client, id: keyId } = await h.client({ team: 'payments', env: 'prod', seat: 'alice' });
    const traceparent = `00-${PARENT_TRACE}-${PARENT_SPAN}-01`;
    const body = {
      model: 'claude-sonnet-4-6',
      max_tokens: 200,
      system: CACHED_SYSTEM,
      messages: [{ role: 'user' as const, content: 'hello' }],
    };
    await client.messages.create(body, { headers: { traceparent } });
    const second = await client.messages.create(body, { headers: { traceparent } });
    expect(second.usage.cache_read_input_tokens).toBeGreaterThan(0);
    await flush(h);

    const calls = rx.spans.filter((s) => s.traceId === PARENT_TRACE);
    expect(calls).toHaveLength(2);
    const s = calls[1]!;
    expect(s.name).toBe('chat claude-sonnet-4-6');
    expect(s.parentSpanId).toBe(PARENT_SPAN);
    expect(s.kind).toBe(3); // client
    expect(s.end).toBeGreaterThan(s.start);
    expect(s.status).toBeUndefined();
    const [entry] = await h.rt.store.listLedger({ scope: 'seat:alice', kind: 'model', limit: 1 });
    const a = s.attributes;
    expect(a).toMatchObject({
      'gen_ai.operation.name': 'chat',
      'gen_ai.provider.name': 'chokepoint.emulator',
      'gen_ai.request.model': 'claude-sonnet-4-6',
      'gen_ai.response.model': 'claude-sonnet-4-6',
      'gen_ai.request.max_tokens': 200,
      'gen_ai.usage.output_tokens': second.usage.output_tokens,
      'gen_ai.usage.cache_read.input_tokens': second.usage.cache_read_input_tokens,
      'gen_ai.usage.cache_creation.input_tokens': second.usage.cache_creation_input_tokens ?? 0,
      'http.response.status_code': 200,
      'chokepoint.team': 'payments',
      'chokepoint.env': 'prod',
      'chokepoint.seat': 'alice',
      'chokepoint.key_id': keyId,
      'chokepoint.provider': 'anthropic',
      'chokepoint.budget.decision': 'admitted',
      'chokepoint.cost_micros': entry!.cost,
      'chokepoint.reserved_micros': entry!.reserved,
      'chokepoint.prefix_hash': entry!.prefixHash,
      'chokepoint.ledger_id': entry!.id,
      'chokepoint.stream': false,
    });
    // Cached tokens count inside input_tokens (the conventions' rule).
    const u = second.usage;
    expect(a['gen_ai.usage.input_tokens']).toBe(
      u.input_tokens + (u.cache_read_input_tokens ?? 0) + (u.cache_creation_input_tokens ?? 0),
    );
    expect(a['chokepoint.cache_hit_rate']).toBeGreaterThan(0.5);
    expect(Number(a['chokepoint.cost_usd']) * 1e6).toBeCloseTo(entry!.cost, 3);
    expect(s.events.map((e) => e.name)).toEqual(['chokepoint.admitted', 'chokepoint.responded']);
    expect(a).not.toHaveProperty('error.type');

    // The resource, the scope and the exporter's headers, from the OTEL_* variables.
    expect(s.resource).toMatchObject({
      'service.name': 'chokepoint-test',
      'deployment.environment.name': 'test',
      'service.namespace': 'ai',
    });
    expect(s.scope.name).toBe('chokepoint');
    expect(rx.requests[0]).toMatchObject({
      path: '/v1/traces',
      headers: {
        authorization: 'Bearer collector-token',
        'x-tenant': 'cp',
        'content-type': 'application/json',
      },
    });
  });

  it('marks a refused call: budget decision refused, the refusal code as error.type', async () => {
    const { client } = await h.client({ team: 'payments', env: 'prod', seat: 'mallory' });
    await h.rt.store.setKill('seat:mallory', { actor: 'oncall', reason: 'runaway' });
    const err = await client.messages
      .create({ model: 'claude-haiku-4-5', max_tokens: 50, messages: [{ role: 'user', content: 'hi' }] })
      .then(
        () => ({ status: 200 }),
        (e: { status: number }) => e,
      );
    expect(err.status).toBe(403);
    await flush(h);
    const s = rx.spans.find((x) => x.attributes['chokepoint.seat'] === 'mallory')!;
    expect(s.parentSpanId).toBeUndefined();
    expect(s.traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(s.attributes).toMatchObject({
      'chokepoint.budget.decision': 'refused',
      'chokepoint.refusal.code': 'killed',
      'error.type': 'killed',
      'http.response.status_code': 403,
      'chokepoint.cost_micros': 0,
    });
    expect(s.attributes).not.toHaveProperty('gen_ai.usage.input_tokens');
    expect(s.status).toEqual({ code: 2, message: 'killed' });
  });

  it('puts a run, its model and tool calls and its approval wait in one trace, parented by the run', async () => {
    const started = await h.api<{ run: { id: string; state: string } }>('POST', '/api/runs', {
      workflow: 'gated',
      input: { task: 'Pay it [[emulator:tool_use pay={"order":"A1","amount_usd":5}]]' },
      wait: 20,
    });
    const runId = started.body.run.id;
    expect(started.body.run.state).toBe('suspended');
    const approved = await h.api('POST', `/api/approvals/${runId}.1/approve`, { reason: 'looks right' });
    expect(approved.status).toBe(200);
    const done = await h.rt.runs!.wait(runId, 20_000);
    expect(done.state).toBe('done');
    await flush(h);

    const ctx = runContext(runId);
    const trace = rx.spans.filter((s) => s.traceId === ctx.traceId);
    const [run] = byName(trace, 'invoke_workflow gated');
    expect(run).toBeDefined();
    expect(run!.spanId).toBe(ctx.spanId);
    expect(run!.parentSpanId).toBeUndefined();
    expect(run!.attributes).toMatchObject({
      'gen_ai.operation.name': 'invoke_workflow',
      'gen_ai.workflow.name': 'gated',
      'chokepoint.workflow': 'gated',
      'chokepoint.run': runId,
      'chokepoint.run.state': 'done',
      'chokepoint.run.suspensions': 1,
    });

    const models = byName(trace, 'chat claude-haiku-4-5');
    expect(models.length).toBeGreaterThanOrEqual(2);
    const tools = byName(trace, 'execute_tool pay');
    expect(tools).toHaveLength(1);
    const [wait] = byName(trace, 'approval approval_required');
    expect(wait).toBeDefined();
    for (const child of [...models, ...tools, wait!]) {
      expect(child.parentSpanId, child.name).toBe(ctx.spanId);
      expect(child.start, child.name).toBeGreaterThanOrEqual(run!.start - 1_000_000n);
      expect(child.end, child.name).toBeLessThanOrEqual(run!.end + 1_000_000n);
    }
    expect(models[0]!.attributes).toMatchObject({ 'chokepoint.run': runId, 'chokepoint.workflow': 'gated' });
    expect(tools[0]!.attributes).toMatchObject({
      'gen_ai.operation.name': 'execute_tool',
      'gen_ai.tool.name': 'pay',
      'chokepoint.run': runId,
      'chokepoint.budget.decision': 'admitted',
      'chokepoint.cost_micros': 0,
    });
    expect(wait!.attributes).toMatchObject({
      'chokepoint.approval.id': `${runId}.1`,
      'chokepoint.approval.reason': 'approval_required',
      'chokepoint.approval.decision': 'approve',
      'chokepoint.approval.actor': 'admin',
    });
    expect(wait!.end).toBeGreaterThan(wait!.start);
    // The tool ran after the approval: the wait ends before the tool span starts.
    expect(wait!.end).toBeLessThanOrEqual(tools[0]!.start + 1_000_000n);
  });
});

describe('OpenTelemetry traces over OTLP/HTTP (http/protobuf, the default protocol)', () => {
  let h: Harness;
  let rx: Receiver;
  beforeAll(async () => {
    rx = await startReceiver();
    h = await startHarness({ env: { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${rx.url}/custom/traces` } });
  }, 60_000);
  afterAll(async () => {
    await h?.close();
    await rx?.close();
  });

  it('sends the same span as protobuf to the traces endpoint as given', async () => {
    const { client } = await h.client({ team: 'ops', env: 'dev', seat: 'bob' });
    const traceparent = `00-${PARENT_TRACE}-${PARENT_SPAN}-01`;
    const msg = await client.messages.create(
      { model: 'claude-haiku-4-5', max_tokens: 64, messages: [{ role: 'user', content: 'hi' }] },
      { headers: { traceparent } },
    );
    await flush(h);
    expect(rx.requests[0]!.path).toBe('/custom/traces');
    expect(rx.requests[0]!.headers['content-type']).toBe('application/x-protobuf');
    const [s] = rx.spans;
    expect(s).toMatchObject({
      traceId: PARENT_TRACE,
      parentSpanId: PARENT_SPAN,
      name: 'chat claude-haiku-4-5',
      kind: 3,
    });
    expect(s!.attributes).toMatchObject({
      'gen_ai.request.model': 'claude-haiku-4-5',
      'gen_ai.usage.output_tokens': msg.usage.output_tokens,
      'chokepoint.team': 'ops',
      'chokepoint.budget.decision': 'admitted',
      'chokepoint.stream': false,
    });
    expect(typeof s!.attributes['chokepoint.cache_hit_rate']).toBe('number');
    expect(s!.resource['service.name']).toBe('chokepoint');
    // Epoch nanoseconds, exact to the microsecond: within a minute of now.
    const now = BigInt(Date.now()) * 1_000_000n;
    expect(now - s!.end).toBeLessThan(60_000_000_000n);
  });

  it('honours a traceparent that says not sampled (parent-based sampling): no span', async () => {
    const { client } = await h.client({ team: 'ops', env: 'dev', seat: 'carol' });
    await client.messages.create(
      { model: 'claude-haiku-4-5', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] },
      { headers: { traceparent: `00-${'a'.repeat(32)}-${PARENT_SPAN}-00` } },
    );
    await client.messages.create({
      model: 'claude-haiku-4-5',
      max_tokens: 16,
      messages: [{ role: 'user', content: 'hi' }],
    });
    await flush(h);
    const carol = rx.spans.filter((s) => s.attributes['chokepoint.seat'] === 'carol');
    expect(carol).toHaveLength(1);
    expect(carol[0]!.parentSpanId).toBeUndefined();
  });
});

describe('a collector that is down', () => {
  it('never fails a call: the spans are dropped and the failure logged once', async () => {
    const rx = await startReceiver();
    const deadUrl = rx.url;
    await rx.close(); // nothing listens there any more
    const h = await startHarness({
      env: { OTEL_EXPORTER_OTLP_ENDPOINT: deadUrl, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' },
      logLevel: 'warn',
    });
    try {
      const { client } = await h.client({ team: 'ops', env: 'dev', seat: 'dave' });
      const msg = await client.messages.create({
        model: 'claude-haiku-4-5',
        max_tokens: 16,
        messages: [{ role: 'user', content: 'hi' }],
      });
      expect(msg.type).toBe('message');
      await flush(h);
      const warned = h.logs.filter((l) => l.includes('traces could not be exported'));
      expect(warned).toHaveLength(1);
      expect(warned[0]).toContain('"spans":1');
    } finally {
      await h.close();
    }
  });
});

describe('tracing configuration (OTEL_* variables)', () => {
  const parse = (env: Record<string, string>) => {
    const problems: string[] = [];
    return { settings: tracingFromEnv(env, problems), problems };
  };

  it('is off by default, and when disabled or exporter none, whatever else is set', () => {
    expect(parse({})).toEqual({ settings: undefined, problems: [] });
    const url = { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' };
    expect(parse({ ...url, OTEL_SDK_DISABLED: 'true' }).settings).toBeUndefined();
    expect(parse({ ...url, OTEL_TRACES_EXPORTER: 'none' }).settings).toBeUndefined();
  });

  it('reads the endpoint, protocol, headers, resource and batching the spec way', () => {
    const { settings, problems } = parse({
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318/',
      OTEL_EXPORTER_OTLP_HEADERS: 'api-key=a%2Cb',
      OTEL_EXPORTER_OTLP_TRACES_HEADERS: 'x-scope=traces',
      OTEL_RESOURCE_ATTRIBUTES: 'service.name=from-resource,region=eu',
      OTEL_BSP_SCHEDULE_DELAY: '200',
      OTEL_BSP_MAX_EXPORT_BATCH_SIZE: '64',
      OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
      OTEL_TRACES_SAMPLER_ARG: '0.25',
    });
    expect(problems).toEqual([]);
    expect(settings).toMatchObject({
      url: 'http://collector:4318/v1/traces',
      protocol: 'http/protobuf',
      headers: { 'api-key': 'a,b', 'x-scope': 'traces' },
      resource: { 'service.name': 'from-resource', region: 'eu' },
      sampler: { kind: 'ratio', ratio: 0.25, parentBased: true },
      batch: { scheduleDelayMs: 200, maxExportBatchSize: 64, maxQueueSize: 2048, exportTimeoutMs: 30_000 },
      timeoutMs: 10_000,
    });
    expect(parse({ OTEL_TRACES_EXPORTER: 'otlp' }).settings?.url).toBe('http://localhost:4318/v1/traces');
  });

  it('refuses what it cannot honour, naming the variable (and never echoing a header value)', () => {
    const { problems } = parse({
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://c:4318/v1/traces',
      OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc',
      OTEL_EXPORTER_OTLP_HEADERS: 'authorization',
      OTEL_BSP_MAX_QUEUE_SIZE: 'lots',
      OTEL_TRACES_SAMPLER: 'jaeger_remote',
    });
    expect(problems).toEqual([
      'OTEL_EXPORTER_OTLP_PROTOCOL: "grpc" is not supported; use http/protobuf or http/json',
      'OTEL_EXPORTER_OTLP_HEADERS: entry 1 is not key=value (values percent-encoded)',
      'OTEL_BSP_MAX_QUEUE_SIZE: expected an integer ≥ 1, got "lots"',
      expect.stringMatching(/^OTEL_TRACES_SAMPLER: "jaeger_remote" is not supported/),
    ]);
    expect(parse({ OTEL_TRACES_EXPORTER: 'zipkin' }).problems).toEqual([
      'OTEL_TRACES_EXPORTER: "zipkin" is not supported; use otlp (or none)',
    ]);
    expect(parse({ OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4318' }).problems[0]).toMatch(
      /^OTEL_EXPORTER_OTLP_ENDPOINT: expected an http:\/\/ or https:\/\/ URL/,
    );
  });

  it('leaves the runtime without a tracer when no endpoint is set', async () => {
    const h = await startHarness();
    try {
      expect(h.config.tracing).toBeUndefined();
      expect(h.rt.traces).toBeUndefined();
    } finally {
      await h.close();
    }
  });
});

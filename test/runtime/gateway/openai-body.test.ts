import { describe, expect, it } from 'vitest';
import { countTokens } from '../../../adapters/emulator/index.ts';
import { chatToMessages } from '../../../runtime/faces/gateway/openai/chat-to-messages.ts';
import { responsesToMessages } from '../../../runtime/faces/gateway/openai/responses-to-messages.ts';
import { inspect, MAX_DEPTH } from '../../../runtime/gateway/messages.ts';
import {
  checkOpenAIBody,
  inspectOpenAI,
  OPENAI_IMAGE_TOKENS,
  type OpenAIEndpoint,
} from '../../../runtime/gateway/openai-body.ts';
import { Refusal } from '../../../runtime/gateway/refusal.ts';

function refusedField(endpoint: OpenAIEndpoint, json: unknown): string | undefined {
  try {
    const body = checkOpenAIBody(endpoint, json);
    inspectOpenAI(endpoint, body);
    return undefined;
  } catch (err) {
    expect(err).toBeInstanceOf(Refusal);
    expect((err as Refusal).status).toBe(400);
    return (err as Refusal).details.field as string;
  }
}

const chat = (extra: Record<string, unknown> = {}) => ({
  model: 'gpt-5.2',
  messages: [{ role: 'user', content: 'hi' }],
  ...extra,
});

describe('the OpenAI request is checked as far as admission needs, naming the field', () => {
  it.each([
    ['model', { messages: [] }],
    ['model', { model: '', messages: [] }],
    ['messages', { model: 'gpt-5.2' }],
    ['messages.0', { model: 'gpt-5.2', messages: ['hi'] }],
    ['max_completion_tokens', chat({ max_completion_tokens: 0 })],
    ['max_tokens', chat({ max_tokens: 1.5 })],
    ['max_tokens', chat({ max_tokens: 100, max_completion_tokens: 200 })],
    ['n', chat({ n: 0 })],
    ['stream', chat({ stream: 'yes' })],
    ['tools', chat({ tools: {} })],
  ])('chat completions: refuses a bad %s', (field, json) => {
    expect(refusedField('chat/completions', json)).toBe(field);
  });

  it.each([
    ['input', { model: 'gpt-5.2' }],
    ['input', { model: 'gpt-5.2', input: 42 }],
    ['max_output_tokens', { model: 'gpt-5.2', input: 'hi', max_output_tokens: -1 }],
    ['max_tool_calls', { model: 'gpt-5.2', input: 'hi', max_tool_calls: 0 }],
  ])('responses: refuses a bad %s', (field, json) => {
    expect(refusedField('responses', json)).toBe(field);
  });

  it('embeddings: refuses a missing input', () => {
    expect(refusedField('embeddings', { model: 'text-embedding-3-small' })).toBe('input');
  });

  it('refuses a body nested deeper than the bound before walking it', () => {
    let deep: unknown = 'x';
    for (let i = 0; i < MAX_DEPTH + 2; i++) deep = { a: deep };
    expect(refusedField('chat/completions', chat({ metadata: deep }))).toMatch(/^metadata\.a/);
  });

  it('forwards fields it does not know untouched', () => {
    const json = chat({ some_future_field: { x: [1, 2] }, reasoning_effort: 'high' });
    expect(checkOpenAIBody('chat/completions', json)).toBe(json);
  });
});

describe('inspection reads the cap, n and the built-in tools billed per call', () => {
  it('reads the output cap of each endpoint, undefined when absent (the model maximum)', () => {
    const facts = (e: OpenAIEndpoint, j: unknown) => inspectOpenAI(e, checkOpenAIBody(e, j));
    expect(facts('chat/completions', chat({ max_completion_tokens: 300 })).maxOutput).toBe(300);
    expect(facts('chat/completions', chat({ max_tokens: 200 })).maxOutput).toBe(200);
    expect(facts('chat/completions', chat()).maxOutput).toBeUndefined();
    expect(facts('responses', { model: 'm', input: 'x', max_output_tokens: 99 }).maxOutput).toBe(99);
    expect(facts('embeddings', { model: 'm', input: ['a', 'b'] }).maxOutput).toBe(0);
  });

  it('multiplies outputs by n', () => {
    expect(inspectOpenAI('chat/completions', checkOpenAIBody('chat/completions', chat({ n: 3 }))).n).toBe(3);
  });

  it('counts web and file search at max_tool_calls and a code interpreter as one container', () => {
    const body = checkOpenAIBody('responses', {
      model: 'gpt-5.2',
      input: 'search',
      max_tool_calls: 4,
      tools: [
        { type: 'web_search' },
        { type: 'file_search', vector_store_ids: ['vs_1'] },
        { type: 'code_interpreter', container: { type: 'auto' } },
        { type: 'function', name: 'f', parameters: {} },
        { type: 'mcp', server_label: 'x' },
      ],
    });
    expect(inspectOpenAI('responses', body).builtinTools).toEqual({
      webSearch: 4,
      fileSearch: 4,
      codeInterpreter: 1,
    });
  });

  it('refuses a per-call billed tool without max_tool_calls, naming max_tool_calls', () => {
    expect(
      refusedField('responses', { model: 'm', input: 'x', tools: [{ type: 'web_search_preview' }] }),
    ).toBe('max_tool_calls');
  });

  it('refuses a tool type it does not know, whose fee it cannot bound, naming the field', () => {
    const json = { model: 'm', input: 'x', max_tool_calls: 2, tools: [{ type: 'image_generation' }] };
    expect(refusedField('responses', json)).toBe('tools.0.type');
    expect(refusedField('chat/completions', chat({ tools: [{ type: 'web_search' }] }))).toBe('tools.0.type');
  });

  it('says when the input continues state the provider keeps (previous_response_id)', () => {
    const body = checkOpenAIBody('responses', { model: 'm', previous_response_id: 'resp_1', input: 'more' });
    expect(inspectOpenAI('responses', body).storedContext).toBe(true);
  });
});

describe('the input estimate over-estimates', () => {
  const text = 'The quick brown fox jumps over the lazy dog. Ünïcödé and 数字 and emoji 🦊. '.repeat(20);
  const png = `data:image/png;base64,${'A'.repeat(40_000)}`;
  const chatBodies: Array<[string, Record<string, unknown>]> = [
    ['plain text', chat({ messages: [{ role: 'user', content: text }] })],
    [
      'system, tools and a tool round trip',
      chat({
        messages: [
          { role: 'system', content: text },
          { role: 'user', content: 'go' },
          {
            role: 'assistant',
            content: null,
            tool_calls: [
              { id: 't1', type: 'function', function: { name: 'f', arguments: '{"a":[1,2,3,4,5,6]}' } },
            ],
          },
          { role: 'tool', tool_call_id: 't1', content: text },
        ],
        tools: [
          {
            type: 'function',
            function: { name: 'f', description: text, parameters: { type: 'object', properties: { a: {} } } },
          },
        ],
      }),
    ],
    [
      'an image (its base64 not counted)',
      chat({
        messages: [
          {
            role: 'user',
            content: [
              { type: 'text', text: 'what?' },
              { type: 'image_url', image_url: { url: png } },
            ],
          },
        ],
      }),
    ],
  ];

  it.each(chatBodies)(
    'chat (%s): at least the Messages estimate and the emulator count of the translated body',
    (_, json) => {
      const body = checkOpenAIBody('chat/completions', json);
      const estimate = inspectOpenAI('chat/completions', body).inputTokens;
      const translated = chatToMessages(body, { cachePrefix: true });
      expect(estimate).toBeGreaterThanOrEqual(inspect(translated).inputTokens);
      expect(estimate).toBeGreaterThanOrEqual(countTokens(translated as never));
    },
  );

  it('counts an image at a fixed charge, not its bytes', () => {
    const body = checkOpenAIBody('chat/completions', chatBodies[2]![1]);
    const estimate = inspectOpenAI('chat/completions', body).inputTokens;
    expect(estimate).toBeGreaterThanOrEqual(OPENAI_IMAGE_TOKENS);
    expect(estimate).toBeLessThan(OPENAI_IMAGE_TOKENS + 1000);
  });

  it('responses: at least the Messages estimate and the emulator count of the translated body', () => {
    const body = checkOpenAIBody('responses', {
      model: 'claude-sonnet-5-5',
      instructions: text,
      input: [
        { role: 'user', content: [{ type: 'input_text', text }] },
        { type: 'function_call', call_id: 'c1', name: 'f', arguments: '{"x":1}' },
        { type: 'function_call_output', call_id: 'c1', output: text },
      ],
      tools: [{ type: 'function', name: 'f', parameters: { type: 'object', properties: {} } }],
    });
    const estimate = inspectOpenAI('responses', body).inputTokens;
    const translated = responsesToMessages(body, { cachePrefix: '1h' });
    expect(estimate).toBeGreaterThanOrEqual(inspect(translated).inputTokens);
    expect(estimate).toBeGreaterThanOrEqual(countTokens(translated as never));
  });

  it('embeddings: a token array counts at least one token per token id', () => {
    const ids = Array.from({ length: 500 }, (_, i) => i);
    const body = checkOpenAIBody('embeddings', { model: 'text-embedding-3-small', input: [ids] });
    expect(inspectOpenAI('embeddings', body).inputTokens).toBeGreaterThanOrEqual(500);
  });
});

import { describe, expect, it } from 'vitest';
import { chatToMessages } from '../../../runtime/faces/gateway/openai/chat-to-messages.ts';
import { DEFAULT_MAX_TOKENS } from '../../../runtime/faces/gateway/openai/request-parts.ts';
import { responsesToMessages } from '../../../runtime/faces/gateway/openai/responses-to-messages.ts';
import { checkOpenAIBody } from '../../../runtime/gateway/openai-body.ts';
import { Refusal } from '../../../runtime/gateway/refusal.ts';

const MODEL = 'claude-sonnet-5-5';
const chat = (extra: Record<string, unknown>) =>
  chatToMessages(
    checkOpenAIBody('chat/completions', {
      model: MODEL,
      messages: [{ role: 'user', content: 'hi' }],
      ...extra,
    }),
  );
const responses = (extra: Record<string, unknown>) =>
  responsesToMessages(checkOpenAIBody('responses', { model: MODEL, input: 'hi', ...extra }));

function refused(f: () => unknown): string {
  try {
    f();
  } catch (err) {
    expect(err).toBeInstanceOf(Refusal);
    return (err as Refusal).details.field as string;
  }
  throw new Error('expected a refusal');
}

describe('chat completions → Messages', () => {
  it('maps the sampling fields: caps temperature at 1, drops whitespace-only stop sequences, defaults max_tokens', () => {
    const out = chat({ temperature: 1.7, top_p: 0.9, stop: ['END', '  ', '\n'] });
    expect(out).toMatchObject({
      temperature: 1,
      top_p: 0.9,
      stop_sequences: ['END'],
      max_tokens: DEFAULT_MAX_TOKENS,
    });
    expect(chat({ max_tokens: 77, stop: 'STOP' })).toMatchObject({
      max_tokens: 77,
      stop_sequences: ['STOP'],
    });
  });

  it('maps tool_choice and parallel_tool_calls: none, a named function, one call at a time', () => {
    const tools = [{ type: 'function', function: { name: 'f' } }];
    expect(chat({ tools, tool_choice: 'none' }).tool_choice).toEqual({ type: 'none' });
    expect(chat({ tools, tool_choice: { type: 'function', function: { name: 'f' } } }).tool_choice).toEqual({
      type: 'tool',
      name: 'f',
    });
    expect(chat({ tools, parallel_tool_calls: false }).tool_choice).toEqual({
      type: 'auto',
      disable_parallel_tool_use: true,
    });
    expect(chat({ tools }).tools).toEqual([{ name: 'f', input_schema: { type: 'object', properties: {} } }]);
  });

  it('turns a json_schema response_format into Claude structured output, and ignores json_object', () => {
    const schema = { type: 'object', properties: { a: { type: 'string' } } };
    expect(
      chat({ response_format: { type: 'json_schema', json_schema: { name: 'x', schema } } }).output_config,
    ).toEqual({
      format: { type: 'json_schema', schema },
    });
    expect(chat({ response_format: { type: 'json_object' } }).output_config).toBeUndefined();
  });

  it('ignores the fields Anthropic ignores, forwarding none of them', () => {
    const out = chat({
      seed: 1,
      logprobs: true,
      user: 'u',
      store: true,
      reasoning_effort: 'high',
      metadata: { a: 'b' },
    });
    expect(Object.keys(out).sort()).toEqual(['max_tokens', 'messages', 'model']);
  });

  it('sends a PDF file part as a document block', () => {
    const out = chat({
      messages: [
        {
          role: 'user',
          content: [
            { type: 'file', file: { filename: 'a.pdf', file_data: 'data:application/pdf;base64,JVBERi0=' } },
          ],
        },
      ],
    });
    expect((out.messages[0]!.content as unknown[])[0]).toEqual({
      type: 'document',
      source: { type: 'base64', media_type: 'application/pdf', data: 'JVBERi0=' },
      title: 'a.pdf',
    });
  });

  it.each([
    [
      'messages.0.content.0.type',
      { messages: [{ role: 'user', content: [{ type: 'input_audio', input_audio: {} }] }] },
    ],
    [
      'messages.0.content.0.file.file_id',
      { messages: [{ role: 'user', content: [{ type: 'file', file: { file_id: 'f' } }] }] },
    ],
    [
      'messages.0.content.0.image_url.url',
      { messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'ftp://x' } }] }] },
    ],
    ['messages.0.role', { messages: [{ role: 'function', name: 'f', content: 'x' }] }],
    [
      'messages.1.tool_calls.0.function.arguments',
      {
        messages: [
          { role: 'user', content: 'x' },
          {
            role: 'assistant',
            tool_calls: [{ id: 'a', type: 'function', function: { name: 'f', arguments: '{oops' } }],
          },
        ],
      },
    ],
    ['functions', { functions: [{ name: 'f' }] }],
    ['web_search_options', { web_search_options: {} }],
    ['tools.0.type', { tools: [{ type: 'custom', custom: { name: 'x' } }] }],
    [
      'tool_choice',
      { tools: [{ type: 'function', function: { name: 'f' } }], tool_choice: { type: 'allowed_tools' } },
    ],
  ])('refuses what Claude cannot honour, naming %s', (field, extra) => {
    expect(refused(() => chat(extra))).toBe(field);
  });
});

describe('responses → Messages', () => {
  it('drops OpenAI reasoning items and merges a user message after tool outputs into one user turn', () => {
    const out = responses({
      input: [
        { role: 'user', content: 'go' },
        { type: 'reasoning', id: 'rs_1', summary: [], encrypted_content: 'opaque' },
        { type: 'function_call', call_id: 'c1', name: 'f', arguments: '{}' },
        { type: 'function_call_output', call_id: 'c1', output: 'done' },
        { role: 'user', content: [{ type: 'input_text', text: 'and now?' }] },
      ],
    });
    expect(out.messages).toEqual([
      { role: 'user', content: [{ type: 'text', text: 'go' }] },
      { role: 'assistant', content: [{ type: 'tool_use', id: 'c1', name: 'f', input: {} }] },
      {
        role: 'user',
        content: [
          { type: 'tool_result', tool_use_id: 'c1', content: 'done' },
          { type: 'text', text: 'and now?' },
        ],
      },
    ]);
  });

  it('hoists developer items after the instructions, and maps text.format json_schema', () => {
    const schema = { type: 'object' };
    const out = responses({
      instructions: 'A',
      input: [
        { role: 'developer', content: 'B' },
        { role: 'user', content: 'C' },
      ],
      text: { format: { type: 'json_schema', name: 'x', schema } },
    });
    expect(out.system).toEqual([
      { type: 'text', text: 'A' },
      { type: 'text', text: 'B' },
    ]);
    expect(out.output_config).toEqual({ format: { type: 'json_schema', schema } });
  });

  it.each([
    ['previous_response_id', { previous_response_id: 'resp_1' }],
    ['conversation', { conversation: 'conv_1' }],
    ['background', { background: true }],
    ['tools.0.type', { tools: [{ type: 'web_search' }] }],
    ['input.0.type', { input: [{ type: 'item_reference', id: 'x' }] }],
    [
      'input.0.content.0.file_id',
      { input: [{ role: 'user', content: [{ type: 'input_image', file_id: 'f' }] }] },
    ],
  ])('refuses what a stateless Claude translation cannot honour, naming %s', (field, extra) => {
    expect(refused(() => responses(extra))).toBe(field);
  });
});

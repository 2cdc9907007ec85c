/**
 * The request shape Claude Code 2.1.328 sends (docs/research/claude-code-2.1.md §5, §10): the
 * emulator must accept it as is, or Claude Code falls into its 6-request 400 degradation.
 */
import { describe, expect, it } from 'vitest';
import { createEmulator } from '../../adapters/emulator/index.ts';

const TODAY = Date.parse('2026-12-02T12:00:00Z');
const BETAS =
  'claude-code-20250219,interleaved-thinking-2025-05-14,context-management-2025-06-27,per-turn-control-2026-07-01,mid-conversation-tool-changes-2026-07-01,thinking-token-count-2026-05-13,advanced-tool-use-2025-11-20,effort-2025-11-24';

const body = (model: string, stream: boolean, systemAsString = false) => ({
  model,
  messages: [
    {
      role: 'user',
      content: [
        { type: 'text', text: '<system-reminder>\nAttribution for git commits…\n</system-reminder>' },
        { type: 'text', text: 'Say hello [[emulator:text=Hello.]]' },
      ],
    },
    {
      role: 'system',
      content: systemAsString
        ? 'Environment: cwd /tmp/x, OS linux, deferred tools: WebFetch.'
        : [
            {
              type: 'text',
              text: 'Environment: cwd /tmp/x, OS linux, deferred tools: WebFetch.',
              cache_control: { type: 'ephemeral' },
            },
          ],
      output_config: { effort: 'medium' },
    },
  ],
  system: [
    { type: 'text', text: 'x-anthropic-billing-header: cc_version=2.1.328.abc; cc_entrypoint=sdk-cli;' },
    {
      type: 'text',
      text: "You are a Claude agent, built on Anthropic's Claude Agent SDK.",
      cache_control: { type: 'ephemeral' },
    },
    { type: 'text', text: 'Main prompt. '.repeat(400), cache_control: { type: 'ephemeral' } },
  ],
  tools: [
    {
      name: 'Bash',
      description: 'Run a command',
      input_schema: {
        $schema: 'https://json-schema.org/draft/2020-12/schema',
        type: 'object',
        properties: { command: { type: 'string' } },
        required: ['command'],
        additionalProperties: false,
      },
    },
    {
      name: 'DeferredToolPlaceholder',
      description: 'Reserved placeholder that keeps deferred tool loading active; never call this tool.',
      input_schema: { type: 'object', properties: {} },
      defer_loading: true,
    },
  ],
  metadata: { user_id: JSON.stringify({ device_id: 'd', session_id: 's' }) },
  max_tokens: 128_000,
  thinking: { type: 'adaptive', display: 'omitted' },
  context_management: { edits: [{ type: 'clear_thinking_20251015', keep: 'all' }] },
  output_config: { effort: 'medium' },
  stream,
});

const call = (emu: ReturnType<typeof createEmulator>, b: unknown) =>
  emu.fetch(
    new Request('http://emulator/v1/messages?beta=true', {
      method: 'POST',
      headers: {
        'x-api-key': 'sk-emulator-local',
        'anthropic-version': '2023-06-01',
        'anthropic-beta': BETAS,
        'content-type': 'application/json',
      },
      body: JSON.stringify(b),
    }),
  );

describe('Claude Code 2.1 traffic', () => {
  it('accepts its streamed and non-streamed requests on the current models', async () => {
    const emu = createEmulator({ now: () => TODAY });
    for (const model of ['claude-opus-5-5', 'claude-sonnet-5-5', 'claude-haiku-5-5']) {
      const json = await call(emu, body(model, false));
      expect(json.status, model).toBe(200);
      const msg = await json.json();
      expect(msg.content.map((b: { type: string }) => b.type)).toEqual(['thinking', 'text']);
      expect(msg.content[0].thinking).toBe('');
      expect(msg.context_management).toEqual({ applied_edits: [] });
      const sse = await call(emu, body(model, true, true));
      expect(sse.status).toBe(200);
      const text = await sse.text();
      for (const ev of ['message_start', 'content_block_start', 'content_block_stop', 'message_delta']) {
        expect(text).toContain(`event: ${ev}\n`);
      }
      expect(text).toContain('"signature_delta"');
    }
  });
});

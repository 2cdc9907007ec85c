import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineAgent } from '../../../runtime/workflows/agent.ts';
import {
  assemble,
  freezePrefix,
  PrefixDriftError,
  PrefixRegistry,
  refuseOwnPrefix,
} from '../../../runtime/workflows/prompt.ts';

const agent = (system: string) =>
  defineAgent({
    id: 'triage',
    version: 1,
    description: 'd',
    input: z.object({}),
    system,
    tools: {
      lookup: { description: 'Looks up', input_schema: z.object({ id: z.string() }), run: () => 'ok' },
    },
    limits: { spend: '$1', time: '1m', steps: 3 },
  });

describe('prompt assembly', () => {
  it('puts the tools and system first, a breakpoint at the end of the prefix and one on the last message', () => {
    const prefix = freezePrefix(agent('You triage.'));
    const body = assemble(
      prefix,
      [
        { role: 'user', content: 'first' },
        {
          role: 'assistant',
          content: [{ type: 'text', text: 'answer', cache_control: { type: 'ephemeral' } }],
        },
        { role: 'user', content: 'second' },
      ],
      { model: 'cheap', maxTokens: 100 },
    );
    expect(body.tools).toEqual([
      { name: 'lookup', description: 'Looks up', input_schema: expect.objectContaining({ type: 'object' }) },
    ]);
    expect(body.system).toEqual([
      { type: 'text', text: 'You triage.', cache_control: { type: 'ephemeral' } },
    ]);
    expect(body.messages[0]).toEqual({ role: 'user', content: 'first' });
    expect(body.messages[1]).toEqual({ role: 'assistant', content: [{ type: 'text', text: 'answer' }] });
    expect(body.messages[2]).toEqual({
      role: 'user',
      content: [{ type: 'text', text: 'second', cache_control: { type: 'ephemeral' } }],
    });
  });

  it('hashes the prefix per version: same prompt same hash, a changed prompt under the same version is drift', () => {
    const a = freezePrefix(agent('You triage.'));
    expect(freezePrefix(agent('You triage.')).hash).toBe(a.hash);
    const registry = new PrefixRegistry();
    registry.record(a);
    expect(registry.hashOf('triage', '1')).toBe(a.hash);
    expect(() => registry.record(freezePrefix(agent('You triage. It is 10:42.')))).toThrow(PrefixDriftError);
  });

  it('is frozen: a workflow can neither mutate it nor pass its own system or tools', () => {
    const prefix = freezePrefix(agent('You triage.'));
    expect(() => {
      (prefix.system[0] as unknown as { text: string }).text = 'changed';
    }).toThrow(TypeError);
    expect(() => refuseOwnPrefix(prefix, { messages: [], system: 'mine' })).toThrow(/prefix_drift.*'system'/);
    expect(() => refuseOwnPrefix(prefix, { messages: [] })).not.toThrow();
  });
});

import { describe, expect, it } from 'vitest';
import {
  afterModel,
  afterTool,
  type Block,
  callTool,
  type Message,
  type ModelOutput,
  type ToolUse,
  toolResult,
} from '../../../runtime/workflow.ts';

/** The tool-loop helpers of the public entry, the bookkeeping hand-written machines share. */

const use: ToolUse = { type: 'tool_use', id: 'toolu_1', name: 'lookup', input: { order: 'A1' } };
const ask: Message = { role: 'user', content: 'Where is A1?' };
const modelDone = (toolUses: ToolUse[]): { output: ModelOutput } => ({
  output: {
    message: { role: 'assistant', content: toolUses as unknown as Block[] },
    text: '',
    toolUses,
    stopReason: toolUses.length ? 'tool_use' : 'end_turn',
    model: 'claude-haiku-4-5',
  },
});

describe('the tool-loop helpers', () => {
  it('afterModel appends the model message and keeps the first tool call; callTool runs it', () => {
    const next = afterModel({ messages: [ask] }, modelDone([use, { ...use, id: 'toolu_2' }]));
    expect(next.messages).toEqual([ask, { role: 'assistant', content: [use, { ...use, id: 'toolu_2' }] }]);
    expect(next.use).toEqual(use);
    expect(callTool({ context: next })).toEqual({
      name: 'lookup',
      input: { order: 'A1' },
      toolUseId: 'toolu_1',
    });
    expect(afterModel({ messages: [ask] }, modelDone([])).use).toBeUndefined();
  });

  it("afterTool answers the call with a tool_result, marking an error as the model's API expects", () => {
    const ok = afterTool({ messages: [ask], use }, { output: { content: 'shipped', isError: false } });
    expect(ok).toEqual({
      messages: [
        ask,
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_1', content: 'shipped' }] },
      ],
      use: undefined,
    });
    expect(toolResult(use, { content: 'refused', isError: true })).toEqual({
      type: 'tool_result',
      tool_use_id: 'toolu_1',
      content: 'refused',
      is_error: true,
    });
  });

  it('says where a helper belongs when it is used on the wrong event', () => {
    expect(() => afterModel({ messages: [] }, { output: { content: 'x', isError: false } })).toThrow(
      "afterModel: expected the output of the 'model' actor (use it in that invoke's onDone)",
    );
    expect(() => afterTool({ messages: [], use }, modelDone([use]))).toThrow(
      "afterTool: expected the output of the 'tool' actor",
    );
    expect(() => afterTool({ messages: [] }, { output: { content: 'x', isError: false } })).toThrow(
      'afterTool: no tool call in progress',
    );
    expect(() => callTool({ context: { messages: [] } })).toThrow('callTool: no tool call to run');
  });
});

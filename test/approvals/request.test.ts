import { describe, expect, it } from 'vitest';
import { REQUEST_CHARS, requestOf } from '../../approvals/request.ts';

/** What an approval item keeps of the run's request: its input and its first user message. */

describe('the request on an approval item', () => {
  it('keeps the input as JSON and the first user message of the conversation the machine keeps', () => {
    const snapshot = {
      status: 'active',
      context: {
        messages: [
          { role: 'user', content: 'Refund request for order A-1001: arrived broken' },
          { role: 'assistant', content: [{ type: 'text', text: 'Looking it up.' }] },
          { role: 'user', content: [{ type: 'tool_result', tool_use_id: 't', content: '{}' }] },
        ],
      },
    };
    expect(requestOf({ input: { order_id: 'A-1001', reason: 'arrived broken' }, snapshot })).toEqual({
      inputJson: '{"order_id":"A-1001","reason":"arrived broken"}',
      firstUserMessage: 'Refund request for order A-1001: arrived broken',
    });
  });

  it('reads text blocks, and has no first message when the machine keeps no conversation', () => {
    const blocks = {
      context: {
        messages: [
          {
            role: 'user',
            content: [
              { type: 'image', source: {} },
              { type: 'text', text: 'first part' },
              { type: 'text', text: 'second part' },
            ],
          },
        ],
      },
    };
    expect(requestOf({ input: { n: 3 }, snapshot: blocks }).firstUserMessage).toBe('first part\nsecond part');
    expect(requestOf({ input: { n: 3 }, snapshot: { context: { i: 0 } } })).toEqual({ inputJson: '{"n":3}' });
    expect(requestOf({ input: undefined, snapshot: undefined })).toEqual({});
  });

  it('cuts a long input and a long message to what a card can show', () => {
    const long = 'x'.repeat(5_000);
    const r = requestOf({
      input: { long },
      snapshot: { context: { messages: [{ role: 'user', content: long }] } },
    });
    expect(r.inputJson).toHaveLength(REQUEST_CHARS);
    expect(r.inputJson!.endsWith('…')).toBe(true);
    expect(r.firstUserMessage).toHaveLength(REQUEST_CHARS);
  });
});

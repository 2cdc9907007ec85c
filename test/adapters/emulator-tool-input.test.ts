import { describe, expect, it } from 'vitest';
import type { JsonSchema, Message } from '../../adapters/emulator/request.ts';
import {
  inputFromConversation,
  inputFromSchema,
  inputFromTurns,
} from '../../adapters/emulator/tool-input.ts';

/** The emulated model's tool inputs, drawn from the conversation (workflows/refund.ts's tools). */

const LOOKUP: JsonSchema = {
  type: 'object',
  properties: { order_id: { type: 'string' } },
  required: ['order_id'],
};
const REFUND: JsonSchema = {
  type: 'object',
  properties: { order_id: { type: 'string' }, amount_usd: { type: 'number', minimum: 0 } },
  required: ['order_id', 'amount_usd'],
};
const ask = (text: string): Message => ({ role: 'user', content: text });

describe('emulator tool inputs from the conversation', () => {
  it('takes the order id the user named', () => {
    const messages = [ask('Refund request for order A-1001: arrived broken')];
    expect(inputFromConversation(LOOKUP, messages)).toEqual({ order_id: 'A-1001' });
    for (const text of ['order #B-77 never came.', 'Order id: X9, please', 'order_id=Q-5'])
      expect(inputFromConversation(LOOKUP, [ask(text)]).order_id, text).toMatch(/^(B-77|X9|Q-5)$/);
  });

  it('after a lookup: the same order id, and the amount from the total (same unit)', () => {
    const messages: Message[] = [
      ask('Refund request for order A-1001: arrived broken'),
      {
        role: 'assistant',
        content: [{ type: 'tool_use', id: 't1', name: 'lookup_order', input: { order_id: 'A-1001' } }],
      },
      {
        role: 'user',
        content: [
          {
            type: 'tool_result',
            tool_use_id: 't1',
            content: '{"total_usd":120,"status":"delivered damaged"}',
          },
        ],
      },
    ];
    expect(inputFromConversation(REFUND, messages)).toEqual({ order_id: 'A-1001', amount_usd: 120 });
  });

  it('an amount the user asked for wins over the total; the JSON input of a defineAgent run is read by key', () => {
    const asked = [ask('Refund $35.50 on order A-1002, lost in transit'), ask('{"total_usd":120}')];
    expect(inputFromConversation(REFUND, asked).amount_usd).toBe(35.5);
    const json = [ask('{"order_id":"Z-1","amount_usd":7}')];
    expect(inputFromConversation(REFUND, json)).toEqual({ order_id: 'Z-1', amount_usd: 7 });
  });

  it('ignores values of the wrong type or out of bounds, and falls back to the schema', () => {
    const messages = [ask('{"order_id":42,"amount_usd":-3}')];
    expect(inputFromConversation(REFUND, messages)).toEqual({
      order_id: 'emulated-order_id',
      amount_usd: 0,
    });
    expect(inputFromSchema(REFUND)).toEqual({ order_id: 'emulated-order_id', amount_usd: 0 });
  });

  it('ignores directives in the user text', () => {
    const messages = [ask('[[emulator:text=order Z-9]] nothing here')];
    expect(inputFromConversation(LOOKUP, messages)).toEqual({ order_id: 'emulated-order_id' });
  });

  it('the OpenAI formats: the same from text turns (user text, tool results)', () => {
    const turns = [
      { role: 'system', text: 'You handle refunds. order Z-0 is an example.' },
      { role: 'user', text: 'Refund request for order A-1001: arrived broken' },
      { role: 'assistant', text: '' },
      { role: 'tool', text: '{"total_usd":120,"status":"delivered damaged"}', toolResult: true },
    ];
    expect(inputFromTurns(REFUND, turns)).toEqual({ order_id: 'A-1001', amount_usd: 120 });
  });
});

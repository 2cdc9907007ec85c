import {
  afterModel,
  afterTool,
  assign,
  callTool,
  defineWorkflow,
  type Message,
  runtimeActors,
  setup,
  type ToolUse,
  z,
} from 'chokepoint/workflow';

/**
 * A refund desk with a human in the loop: the model looks up the order, proposes a refund, and
 * `issue_refund` (money leaves the company) waits for a human. Approve and the refund is issued;
 * deny and the model is told so and writes to the customer anyway. A custom XState machine:
 * each step is a runtime `model` or `tool` invocation, so the runtime still owns every call.
 */

const ORDERS: Record<string, { total_usd: number; status: string }> = {
  'A-1001': { total_usd: 120, status: 'delivered damaged' },
  'A-1002': { total_usd: 35, status: 'lost in transit' },
};

interface Context {
  messages: Message[];
  use?: ToolUse;
  answer: string;
}

const input = z.object({
  order_id: z.string().min(1),
  reason: z.string().min(3),
  /** What the customer asks back; without it, the model proposes up to the order's total. */
  amount_usd: z.number().positive().optional(),
});

/** The customer's request, as the model reads it. */
const request = (i: z.output<typeof input>) =>
  `Refund request for order ${i.order_id}${i.amount_usd ? ` ($${i.amount_usd.toFixed(2)} asked)` : ''}: ${i.reason}`;

const machine = setup({
  types: { context: {} as Context, input: {} as z.output<typeof input>, output: {} as { answer: string } },
  actors: runtimeActors,
  actions: {
    /** Appends the model's message and keeps the tool call it asked for. */
    remember: assign(({ context, event }) => afterModel(context, event)),
    /** Appends the tool's result for the model. */
    answered: assign(({ context, event }) => afterTool(context, event)),
  },
}).createMachine({
  id: 'refund',
  context: ({ input }) => ({
    messages: [{ role: 'user', content: request(input) }],
    answer: '',
  }),
  initial: 'lookup',
  states: {
    lookup: {
      invoke: {
        src: 'model',
        input: ({ context }) => ({
          step: 'review',
          messages: context.messages,
          toolChoice: { tool: 'lookup_order' },
        }),
        onDone: { target: 'lookingUp', actions: 'remember' },
      },
    },
    lookingUp: {
      invoke: { src: 'tool', input: callTool, onDone: { target: 'propose', actions: 'answered' } },
    },
    propose: {
      invoke: {
        src: 'model',
        input: ({ context }) => ({
          step: 'review',
          messages: context.messages,
          toolChoice: { tool: 'issue_refund' },
        }),
        onDone: { target: 'refunding', actions: 'remember' },
      },
    },
    // issue_refund is in `approvals`: the run suspends here until a human decides.
    refunding: { invoke: { src: 'tool', input: callTool, onDone: { target: 'reply', actions: 'answered' } } },
    reply: {
      invoke: {
        src: 'model',
        input: ({ context }) => ({ step: 'reply', messages: context.messages }),
        onDone: {
          target: 'done',
          actions: assign(({ context, event }) => ({
            messages: [...context.messages, event.output.message],
            answer: event.output.text,
          })),
        },
      },
    },
    done: { type: 'final' },
  },
  output: ({ context }) => ({ answer: context.answer }),
});

export default defineWorkflow({
  id: 'refund',
  version: 1,
  description: 'Proposes a refund for an order; a human approves it before any money moves',
  input,
  prefix: {
    system:
      'You handle refund requests. Look up the order, propose a refund no larger than the order ' +
      'total with issue_refund, then write a short, kind reply to the customer saying what happened.',
  },
  tools: {
    lookup_order: {
      description: 'Looks up an order: total and status',
      input_schema: z.object({ order_id: z.string() }),
      run: ({ order_id }: { order_id: string }) => ORDERS[order_id] ?? { error: `no order ${order_id}` },
    },
    issue_refund: {
      description: 'Refunds an amount to the customer of an order (needs human approval)',
      input_schema: z.object({ order_id: z.string(), amount_usd: z.number().nonnegative() }),
      run: ({ order_id, amount_usd }: { order_id: string; amount_usd: number }) =>
        `refunded $${amount_usd.toFixed(2)} on order ${order_id}`,
    },
  },
  models: { default: 'cheap', review: 'cheap', reply: 'cheap' },
  limits: { spend: '$0.25', time: '5m', steps: 8 },
  approvals: ['issue_refund'],
  machine,
});

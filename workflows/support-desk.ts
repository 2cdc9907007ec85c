import { fileURLToPath } from 'node:url';
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
 * A support desk on an MCP server: the example ticket server (adapters/mcp/examples), started
 * over stdio when the workflow loads. The model searches the existing tickets, files a new one
 * with `tickets__create_ticket` — which waits for a human, as it changes the ticket system —
 * and answers the customer. Only the allowed tools of the server reach the model (the server's
 * other tools stay out of the prompt and are refused if asked for); each call is in the ledger
 * with its duration and result size.
 */

const root = fileURLToPath(new URL('..', import.meta.url));
// From a checkout the server is TypeScript, run through tsx; the installed package has it built
// beside this file's own compiled copy (dist/adapters/…, dist/workflows/…). The URL's path, not
// the URL: the loader imports a workflow with a query.
const server = new URL(import.meta.url).pathname.endsWith('.js')
  ? ['adapters/mcp/examples/tickets-server.js']
  : ['bin/run-ts.js', 'adapters/mcp/examples/tickets-server.ts'];

interface Context {
  messages: Message[];
  use?: ToolUse;
  answer: string;
}

const input = z.object({ customer: z.string().min(1), request: z.string().min(3) });

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
  id: 'support-desk',
  context: ({ input }) => ({
    messages: [{ role: 'user', content: `Request from ${input.customer}:\n${input.request}` }],
    answer: '',
  }),
  initial: 'search',
  states: {
    search: {
      invoke: {
        src: 'model',
        input: ({ context }) => ({
          messages: context.messages,
          toolChoice: { tool: 'tickets__search_tickets' },
        }),
        onDone: { target: 'searching', actions: 'remember' },
      },
    },
    searching: { invoke: { src: 'tool', input: callTool, onDone: { target: 'file', actions: 'answered' } } },
    file: {
      invoke: {
        src: 'model',
        input: ({ context }) => ({
          messages: context.messages,
          toolChoice: { tool: 'tickets__create_ticket' },
        }),
        onDone: { target: 'filing', actions: 'remember' },
      },
    },
    // tickets__create_ticket is in `approvals`: the run suspends here until a human decides.
    filing: { invoke: { src: 'tool', input: callTool, onDone: { target: 'reply', actions: 'answered' } } },
    reply: {
      invoke: {
        src: 'model',
        input: ({ context }) => ({ messages: context.messages }),
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
  id: 'support-desk',
  version: 1,
  description: 'Files a support ticket on an MCP ticket server (a human approves the new ticket)',
  input,
  prefix: {
    system:
      'You run a support desk. Search the existing tickets for the customer request first, then ' +
      'open a ticket with a short title, the details and a priority, then tell the customer in ' +
      'two sentences what you filed (or that a similar ticket exists).',
  },
  mcp: [
    {
      name: 'tickets',
      stdio: {
        command: process.execPath,
        args: server,
        cwd: root,
      },
      tools: ['search_*', 'get_ticket', 'create_ticket'],
      timeout: '30s',
    },
  ],
  models: { default: 'cheap' },
  limits: { spend: '$0.25', time: '5m', steps: 8 },
  approvals: ['tickets__create_ticket'],
  machine,
});

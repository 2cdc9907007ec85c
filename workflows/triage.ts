import { defineAgent, z } from 'chokepoint/workflow';

/** Support-ticket triage: reads a ticket, looks up the order if there is one, sets a priority. */
export default defineAgent({
  id: 'triage',
  version: 1,
  description: 'Triages a support ticket: finds the order, sets a priority, says why',
  input: z.object({ ticket: z.string().min(1), customer: z.string().optional() }),
  system:
    'You triage customer support tickets. Look up the order when the ticket names one, then set a ' +
    'priority (low, normal, urgent) with set_priority and answer with one line saying why.',
  tools: {
    lookup_order: {
      description: 'Looks up an order by its id: status and value',
      input_schema: z.object({ order_id: z.string() }),
      run: ({ order_id }: { order_id: string }) => ({ order_id, status: 'delayed', value_usd: 120 }),
    },
    set_priority: {
      description: 'Sets the ticket priority',
      input_schema: z.object({ priority: z.enum(['low', 'normal', 'urgent']) }),
      run: ({ priority }: { priority: string }) => `priority set to ${priority}`,
    },
  },
  model: 'cheap',
  limits: { spend: '$0.10', time: '2m', steps: 8 },
  maxTokens: 512,
  task: (i) => (i.customer ? `Ticket from ${i.customer}:\n${i.ticket}` : i.ticket),
});

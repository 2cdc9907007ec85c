import { defineAgent, z } from 'chokepoint/workflow';

/** Approvals benchmark: a model call, a tool behind an approval gate, a model call. */
export default defineAgent({
  id: 'gated',
  version: 1,
  description: 'benchmark: model, a gated tool, model',
  input: z.object({ task: z.string() }),
  system: 'You look up orders.',
  tools: {
    lookup: {
      description: 'Looks up an order',
      input_schema: z.object({ order: z.string() }),
      run: ({ order }: { order: string }) => `order ${order}: shipped`,
    },
  },
  approvals: ['lookup'],
  model: 'claude-haiku-4-5',
  limits: { spend: '$1.00', time: '10m', steps: 10 },
  task: (i) => i.task,
});

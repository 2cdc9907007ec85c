import { defineAgent, z } from 'chokepoint/workflow';

/**
 * A research agent that must call a tool every turn and only stops when it calls `finish`.
 * A real model finishes when it has enough; one that never does (or the emulator, which always
 * picks the first tool) would search forever. Its limits stop it: the spend box ($0.10, each
 * turn re-reads a longer conversation), the time box (2 minutes) or the step cap, whichever
 * comes first. The run then SUSPENDS and waits for a human to approve, extend or kill it.
 */

const CORPUS = [
  'Prompt caching bills cache reads at 0.1x the base input price and 5-minute writes at 1.25x.',
  'A prefix shorter than the model minimum (1,024 tokens for Sonnet) is never cached.',
  'Spend boxes cap what one run may spend; time boxes cap how long it may run unattended.',
  'Agents that loop without a stopping rule are the most common cause of surprise model bills.',
];

export default defineAgent({
  id: 'research',
  version: 1,
  description: 'Researches a question with search and read until it calls finish (bounded by its limits)',
  input: z.object({ question: z.string().min(3), depth: z.number().int().min(1).max(10).default(3) }),
  system:
    'You are a careful research agent. Every turn, call exactly one tool: search for sources, ' +
    'read the promising ones, and call finish with a short report citing what you read once you ' +
    'can answer the question at the requested depth (number of sources read).',
  tools: {
    search: {
      description: 'Searches the research corpus; returns matching snippets with their source ids',
      input_schema: z.object({ query: z.string() }),
      run: ({ query }: { query: string }) =>
        CORPUS.map((text, i) => `[source ${i + 1}] (query: ${query}) ${text}`).join('\n'),
    },
    read: {
      description: 'Reads one source in full by its id',
      input_schema: z.object({ source: z.number().int().min(1) }),
      run: ({ source }: { source: number }) =>
        `${CORPUS[(source - 1) % CORPUS.length]} ${'Further detail. '.repeat(60)}`,
    },
  },
  finishTool: 'finish',
  toolChoice: 'any',
  model: 'standard',
  limits: { spend: '$0.10', time: '2m', steps: 200 },
  maxTokens: 1024,
  task: (i) => `Question: ${i.question}\nDepth: read at least ${i.depth} sources.`,
});

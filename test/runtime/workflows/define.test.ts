import { describe, expect, it } from 'vitest';
import { createMachine, setup } from 'xstate';
import { z } from 'zod';
import { defineAgent } from '../../../runtime/workflows/agent.ts';
import {
  defineWorkflow,
  RUNTIME_ACTORS,
  runtimeActors,
  unknownActors,
  validateWorkflow,
  WorkflowDefinitionError,
} from '../../../runtime/workflows/define.ts';

const machine = setup({ actors: runtimeActors }).createMachine({
  initial: 'ask',
  states: {
    ask: { invoke: { src: 'model', input: () => ({ messages: [] }), onDone: 'done' } },
    done: { type: 'final' },
  },
});

const valid = {
  id: 'summarise',
  version: 1,
  description: 'Summarises a document',
  input: z.object({ text: z.string() }),
  prefix: { system: 'You summarise.' },
  models: { default: 'cheap' },
  limits: { spend: '$0.50', time: '2m', steps: 4 },
  machine,
};

describe('defineWorkflow', () => {
  it('parses limits into µ$ and ms and the prefix into blocks', () => {
    const w = defineWorkflow(valid);
    expect(w.limits).toEqual({ spend: 500_000, time: 120_000, steps: 4 });
    expect(w.version).toBe('1');
    expect(w.prefix).toEqual({ system: ['You summarise.'], tools: [] });
  });

  it('reports every problem, each naming its field', () => {
    const r = validateWorkflow({
      ...valid,
      id: undefined,
      limits: { spend: 'lots', time: 'forever', steps: 0 },
      approvals: ['delete_everything'],
      machine: { not: 'a machine' },
    });
    expect(r.ok).toBe(false);
    const fields = r.ok ? [] : r.problems.map((p) => p.field);
    expect(fields).toEqual(
      expect.arrayContaining(['id', 'limits.spend', 'limits.time', 'limits.steps', 'machine']),
    );
    expect(r.ok ? [] : r.problems.find((p) => p.field === 'limits.spend')?.message).toMatch(/\$2.00/);
  });

  it('names tools referenced by the prefix or approvals that do not exist', () => {
    const r = validateWorkflow({ ...valid, prefix: { system: 's', tools: ['nope'] }, approvals: ['gone'] });
    expect(r.ok ? [] : r.problems).toEqual([
      { field: 'prefix.tools.0', message: "no tool named 'nope' in tools" },
      { field: 'approvals.0', message: "no tool named 'gone' in tools" },
    ]);
  });

  it('refuses a machine that invokes an actor the runtime does not provide', () => {
    const rogue = createMachine({
      initial: 'a',
      states: { a: { invoke: { src: 'openai' } } },
    });
    expect(unknownActors(rogue)).toEqual(['openai']);
    expect(() => defineWorkflow({ ...valid, machine: rogue })).toThrow(WorkflowDefinitionError);
    const r = validateWorkflow({ ...valid, machine: rogue });
    expect(r.ok ? [] : r.problems).toEqual([
      { field: 'machine', message: expect.stringMatching(/'openai'/) },
    ]);
  });
});

describe('defineAgent', () => {
  it('builds a workflow whose machine only invokes the runtime actors', () => {
    const w = defineAgent({
      id: 'weather',
      version: 2,
      description: 'Answers weather questions',
      input: z.object({ question: z.string() }),
      system: 'You answer weather questions.',
      tools: {
        get_weather: {
          description: 'Weather for a city',
          input_schema: z.object({ city: z.string() }),
          run: ({ city }: { city: string }) => `Sunny in ${city}`,
        },
      },
      limits: { spend: '$0.20', time: '1m', steps: 6 },
    });
    expect(w.prefix.tools).toEqual(['get_weather']);
    expect(w.models.default).toBe('cheap');
    expect(unknownActors(w.machine)).toEqual([]);
    const srcs: string[] = [];
    const visit = (n: typeof w.machine.root) => {
      for (const i of n.invoke) srcs.push(String(i.src));
      for (const c of Object.values(n.states)) visit(c);
    };
    visit(w.machine.root);
    expect(new Set(srcs)).toEqual(new Set(RUNTIME_ACTORS));
  });
});

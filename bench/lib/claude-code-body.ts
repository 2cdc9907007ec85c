/**
 * Request bodies shaped like Claude Code's, for the per-call benchmarks: about 49 kB a call, most of
 * it a prefix that does not change between the calls of one session — ~16 tools with long
 * descriptions and JSON-schema inputs, a system prompt in two cache_control'd blocks — then a
 * conversation of text, tool_use and tool_result blocks with a breakpoint on its last block, and
 * `stream: true`. The text is deterministic pseudo-prose (a seeded generator), so every run sends
 * the same bytes.
 *
 * `claudeCodeBodies(n)` gives `n` consecutive turns of one session: the same frozen prefix, a
 * conversation that grows by one exchange (~2 kB) per turn, the breakpoint on its newest block (as
 * Claude Code's), the bodies averaging `targetBytes`.
 */

const WORDS = (
  'the a of to and in file tool call when use with for this that command output run path ' +
  'must not you should each test code function return value error before after read write edit ' +
  'search pattern directory user request answer line string number array object schema type ' +
  'parameter optional required default model prompt cache budget session agent workflow commit ' +
  'branch review change diff status shell process timeout background task todo list item'
).split(' ');

/** A small deterministic PRNG (mulberry32). */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function prose(r: () => number, bytes: number): string {
  const out: string[] = [];
  let n = 0;
  let sentence = 0;
  while (n < bytes) {
    let w = WORDS[Math.floor(r() * WORDS.length)]!;
    if (sentence === 0) w = w[0]!.toUpperCase() + w.slice(1);
    sentence++;
    if (sentence > 8 + Math.floor(r() * 10)) {
      w += r() < 0.1 ? '.\n\n' : '. ';
      sentence = 0;
    } else w += ' ';
    out.push(w);
    n += w.length;
  }
  return out.join('').trimEnd();
}

const TOOL_NAMES = [
  'Task',
  'Bash',
  'Glob',
  'Grep',
  'ExitPlanMode',
  'Read',
  'Edit',
  'MultiEdit',
  'Write',
  'NotebookEdit',
  'WebFetch',
  'TodoWrite',
  'WebSearch',
  'BashOutput',
  'KillShell',
  'SlashCommand',
];

function tools(r: () => number): unknown[] {
  return TOOL_NAMES.map((name, i) => {
    const props: Record<string, unknown> = {};
    const required: string[] = [];
    for (let p = 0; p < 2 + (i % 4); p++) {
      const key = `${WORDS[(i * 7 + p * 3) % WORDS.length]}_${p}`;
      props[key] = { type: p % 3 === 0 ? 'number' : 'string', description: prose(r, 60 + (p % 3) * 40) };
      if (p % 2 === 0) required.push(key);
    }
    return {
      name,
      description: prose(r, name === 'Bash' ? 4_000 : name === 'Task' || name === 'TodoWrite' ? 2_500 : 700),
      input_schema: {
        type: 'object',
        properties: props,
        required,
        additionalProperties: false,
        $schema: 'http://json-schema.org/draft-07/schema#',
      },
    };
  });
}

function exchange(r: () => number, turn: number): unknown[] {
  const id = `toolu_01${String(turn).padStart(6, '0')}bench`;
  return [
    {
      role: 'user',
      content: [{ type: 'text', text: `Turn ${turn}: ${prose(r, 300)}` }],
    },
    {
      role: 'assistant',
      content: [
        { type: 'text', text: prose(r, 200) },
        { type: 'tool_use', id, name: 'Read', input: { file_path: `/repo/src/file_${turn}.ts` } },
      ],
    },
    {
      role: 'user',
      content: [{ type: 'tool_result', tool_use_id: id, content: prose(r, 1_400) }],
    },
  ];
}

/** `n` consecutive turns of one Claude Code session, each body about `targetBytes` of JSON. */
export function claudeCodeBodies(n: number, targetBytes = 49_000): string[] {
  const r = rng(42);
  const prefix = {
    tools: tools(r),
    system: [
      {
        type: 'text',
        text: "You are Claude Code, Anthropic's official CLI for Claude.",
        cache_control: { type: 'ephemeral' },
      },
      { type: 'text', text: prose(r, 8_000), cache_control: { type: 'ephemeral' } },
    ],
  };
  const history: unknown[] = [];
  const bodies: string[] = [];
  let turn = 0;
  const build = () => {
    // The breakpoint sits on the newest block only (a copy: history keeps no cache_control).
    const messages = structuredClone(history) as Array<{ content: Array<Record<string, unknown>> }>;
    const last = messages.at(-1)!.content.at(-1)!;
    last.cache_control = { type: 'ephemeral' };
    return JSON.stringify({
      model: 'claude-haiku-4-5',
      messages,
      system: prefix.system,
      tools: prefix.tools,
      metadata: { user_id: 'user_bench_account__session_0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0' },
      max_tokens: 32_000,
      stream: true,
    });
  };
  // Grow the conversation until the n turns to come average targetBytes.
  history.push(...exchange(r, turn++));
  const sizes: number[] = [];
  for (;;) {
    const b = build();
    sizes.push(b.length);
    const perTurn = sizes.length > 1 ? sizes.at(-1)! - sizes.at(-2)! : 2_000;
    if (b.length + (perTurn * (n - 1)) / 2 >= targetBytes) break;
    history.push(...exchange(r, turn++));
  }
  while (bodies.length < n) {
    bodies.push(build());
    history.push(...exchange(r, turn++));
  }
  return bodies;
}

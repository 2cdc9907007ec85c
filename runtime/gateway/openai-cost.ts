import type { Micros } from '../money.ts';
import type { BuiltinToolCalls } from './openai-body.ts';

/**
 * µ$ per call of the OpenAI built-in tools billed outside tokens (the Responses API), at the
 * bound the request allows. Sources: docs/research/openai-2026-12.md.
 */
export const BUILTIN_TOOL_PRICES: Record<keyof BuiltinToolCalls, Micros> = {
  webSearch: 10_000,
  fileSearch: 2_500,
  codeInterpreter: 30_000,
};

export function builtinToolFees(calls: BuiltinToolCalls): Micros {
  let total = 0;
  for (const [tool, n] of Object.entries(calls) as Array<[keyof BuiltinToolCalls, number]>) {
    if (n > 0) total += n * BUILTIN_TOOL_PRICES[tool];
  }
  return total;
}

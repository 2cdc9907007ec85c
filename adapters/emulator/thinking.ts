/**
 * Adaptive thinking in the reply (`thinking: {type: "adaptive" | "enabled", display}`): the
 * message starts with a `thinking` block carrying a `signature`. Its tokens are billed as output
 * (`usage.output_tokens` includes them; `usage.output_tokens_details.thinking_tokens` breaks them
 * out — SDK 1.13 `OutputTokensDetails`). With `display: "omitted"` the block's `thinking` text is
 * empty but the tokens are still billed (the model still thought).
 *
 * Size: `[[emulator:thinking_tokens=N]]` (or a rule's `thinkingTokens`), else the tokens of a
 * short deterministic sentence about the last user turn; never more than `max_tokens`.
 */
import { createHash } from 'node:crypto';
import { textTokens } from './tokens.ts';

export interface ThinkingOut {
  type: 'thinking';
  thinking: string;
  signature: string;
}

// Billed thinking tokens per block (kept off the block so it serialises like the API's).
const TOKENS = new WeakMap<object, number>();

/** Output tokens of a thinking block (its billed thinking, shown or omitted). */
export function thinkingTokensOf(b: ThinkingOut): number {
  return TOKENS.get(b) ?? textTokens(b.thinking);
}

const PAD = ' The emulator reasons about the request deterministically.';

function sized(base: string, tokens: number): string {
  let text = base;
  while (textTokens(text) < tokens) text += PAD;
  // Cut to exactly `tokens` tokens (ASCII: 4 bytes each).
  return text.slice(0, tokens * 4);
}

/** A deterministic signature (base64), as opaque as the API's. */
export function signatureFor(text: string, tokens: number): string {
  return createHash('sha256').update(`${tokens}\u0000${text}`).digest('base64');
}

/** The thinking block of a reply. */
export function makeThinking(
  lastUserText: string,
  display: 'summarized' | 'omitted',
  requested: number | undefined,
  maxTokens: number,
): ThinkingOut {
  const words = lastUserText.trim().split(/\s+/).slice(0, 12).join(' ');
  const base = words ? `Emulated thinking about: ${words}` : 'Emulated thinking.';
  const tokens = Math.min(requested ?? textTokens(base), maxTokens);
  const full = requested === undefined ? base.slice(0, tokens * 4) : sized(base, tokens);
  const block: ThinkingOut = {
    type: 'thinking',
    thinking: display === 'omitted' ? '' : full,
    signature: signatureFor(full, tokens),
  };
  TOKENS.set(block, tokens);
  return block;
}

/**
 * Money inside Chokepoint is an integer number of micro-dollars (µ$): 1 USD = 1,000,000 µ$.
 * Strings such as "50.00" exist only at the edges (config, HTTP, CLI, UI); these two functions
 * are the only doors between the two worlds.
 */
export type Micros = number;

export const MICROS_PER_USD = 1_000_000;

const AMOUNT = /^\s*\$?\s*(\d{1,12})(?:\.(\d{1,6}))?\s*$/;

/** Why an amount was rejected, phrased for the person who typed it. */
export class AmountError extends Error {
  constructor(readonly input: unknown) {
    super(`expected a dollar amount like "50.00", got ${JSON.stringify(input)}`);
    this.name = 'AmountError';
  }
}

/**
 * Parses a dollar amount into µ$. Accepts `50`, `"50"`, `"50.00"`, `"$50"`, `"$0.000001"`.
 * Negative amounts, more than six decimals, and anything else are an `AmountError`.
 *
 * @example parseUsd('$2.50') // 2_500_000
 */
export function parseUsd(input: unknown): Micros {
  if (typeof input === 'number') {
    if (!Number.isFinite(input) || input < 0) throw new AmountError(input);
    input = String(input);
  }
  if (typeof input !== 'string') throw new AmountError(input);
  const m = AMOUNT.exec(input);
  if (!m) throw new AmountError(input);
  const whole = Number(m[1]);
  const frac = Number((m[2] ?? '').padEnd(6, '0'));
  return whole * MICROS_PER_USD + frac;
}

/** Returns µ$ or undefined: for zod refinements and places that report their own error. */
export function tryParseUsd(input: unknown): Micros | undefined {
  try {
    return parseUsd(input);
  } catch {
    return undefined;
  }
}

/**
 * Formats µ$ as dollars with at least two decimals, more only when needed to stay exact.
 *
 * @example formatUsd(49_910_000) // "49.91"; formatUsd(300) // "0.0003"
 */
export function formatUsd(micros: Micros): string {
  const sign = micros < 0 ? '-' : '';
  const abs = Math.abs(Math.trunc(micros));
  const whole = Math.floor(abs / MICROS_PER_USD);
  let frac = String(abs % MICROS_PER_USD).padStart(6, '0');
  while (frac.length > 2 && frac.endsWith('0')) frac = frac.slice(0, -1);
  return `${sign}${whole}.${frac}`;
}

/** `$49.91`, for messages read by people. */
export function usd(micros: Micros): string {
  return `$${formatUsd(micros)}`;
}

/**
 * Structured logs: one JSON object per line when stderr is not a terminal (for collectors),
 * a readable line when it is. Secrets never reach a log line: values under secret-looking keys
 * and anything shaped like a Chokepoint or Anthropic key are masked before writing.
 */
export type Level = 'debug' | 'info' | 'warn' | 'error' | 'silent';

const RANK: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 99 };
const SECRET_KEYS = /^(authorization|x-api-key|api_?key|apiKey|token|secret|password|cookie)$/i;
const SECRET_VALUES = /\b(cp_[A-Za-z0-9_-]{8,}|cpo_[A-Za-z0-9_-]{8,}|sk-ant-[A-Za-z0-9_-]{8,})/g;

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  child(fields: Record<string, unknown>): Logger;
  readonly level: Level;
}

export interface LoggerOptions {
  level?: Level;
  pretty?: boolean;
  write?: (line: string) => void;
  base?: Record<string, unknown>;
}

/** Every secret SECRET_VALUES matches contains one of these: most strings are passed over unscanned. */
const maskString = (v: string): string =>
  v.includes('cp') || v.includes('sk-ant-')
    ? v.replace(SECRET_VALUES, (m) => `${m.slice(0, 4)}…[redacted]`)
    : v;

/** Masks secrets in any value headed for a log line or an error message. */
export function redact(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return maskString(value);
  if (value === null || typeof value !== 'object' || depth > 6) return value;
  if (value instanceof Error) return { name: value.name, message: redact(value.message) };
  if (Array.isArray(value)) return value.map((v) => redact(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    out[k] = SECRET_KEYS.test(k) && v !== undefined ? '[redacted]' : redact(v, depth + 1);
  }
  return out;
}

/**
 * `{ ...head, ...base, ...fields }` with every value redacted as `redact` would (a key of `base` or
 * `fields` named like a head key replaces it in place), built in one pass: this runs once per
 * call at info.
 */
function record(
  head: Record<string, unknown>,
  base: Record<string, unknown>,
  fields: Record<string, unknown> | undefined,
): Record<string, unknown> {
  for (const src of [base, fields]) {
    if (!src) continue;
    for (const k of Object.keys(src)) {
      const v = src[k];
      const safe = SECRET_KEYS.test(k) && v !== undefined ? '[redacted]' : redact(v, 1);
      // A `__proto__` field never reached a line (redact's copy assigned it as the prototype).
      if (k !== '__proto__') head[k] = safe;
    }
  }
  return head;
}

export function createLogger(opts: LoggerOptions = {}): Logger {
  const level = opts.level ?? 'info';
  const pretty = opts.pretty ?? Boolean(process.stderr.isTTY);
  const write = opts.write ?? ((line: string) => process.stderr.write(`${line}\n`));
  const base = opts.base ?? {};
  const emit = (lvl: Exclude<Level, 'silent'>, msg: string, fields?: Record<string, unknown>) => {
    if (RANK[lvl] < RANK[level]) return;
    const safeMsg = typeof msg === 'string' ? maskString(msg) : (redact(msg) as string);
    if (pretty) {
      const data = record({}, base, fields);
      const extra = Object.entries(data)
        .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
        .join(' ');
      write(
        `${new Date().toISOString().slice(11, 23)} ${lvl.padEnd(5)} ${safeMsg}${extra ? `  ${extra}` : ''}`,
      );
    } else {
      write(
        JSON.stringify(record({ time: new Date().toISOString(), level: lvl, msg: safeMsg }, base, fields)),
      );
    }
  };
  return {
    level,
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
    child: (fields) => createLogger({ level, pretty, write, base: { ...base, ...fields } }),
  };
}

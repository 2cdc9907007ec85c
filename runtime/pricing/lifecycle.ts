import type { PriceEntry } from './prices.ts';
import type { PriceTable } from './pricing.ts';

/**
 * Model end of life. A price entry's `retires` date says when the provider stops serving the
 * model: from that day it is `retired`, in the 60 days before it `retiring`. At start (and after
 * a reload) the models the config's routing classes and the loaded workflows name are checked, so
 * that an operator hears about a class pointing at a retired model before its callers do.
 */
export type Lifecycle = 'active' | 'retiring' | 'retired';

/** How long before its end of life a model counts as `retiring`. */
export const RETIRING_WITHIN_MS = 60 * 86_400_000;

const day = (iso: string) => Date.parse(`${iso}T00:00:00Z`);

export function lifecycleOf(entry: PriceEntry, now: number): Lifecycle {
  if (entry.retires === undefined) return 'active';
  const at = day(entry.retires);
  if (at <= now) return 'retired';
  return at - now <= RETIRING_WITHIN_MS ? 'retiring' : 'active';
}

/** The model line (`sonnet`, `opus`, `haiku`, ...): the first word of the id after `claude`. */
function lineOf(model: string): string | undefined {
  return model
    .split('-')
    .find((w) => w !== 'claude' && /^[a-z]+$/.test(w))
    ?.toLowerCase();
}

/** The newest active model of the same line, as the one to move to; undefined if there is none. */
export function successorOf(entry: PriceEntry, prices: PriceTable, now: number): string | undefined {
  const line = lineOf(entry.model);
  if (!line) return undefined;
  const released = (e: PriceEntry) => day(e.released ?? e.from);
  return prices
    .current(now)
    .filter((e) => e.model !== entry.model && lineOf(e.model) === line && lifecycleOf(e, now) === 'active')
    .filter((e) => released(e) > released(entry))
    .sort((a, b) => released(b) - released(a) || a.model.localeCompare(b.model))[0]?.model;
}

/** A model named by the config or a workflow that is past or near its end of life. */
export interface EndOfLife {
  /** The name as the config or workflow writes it (an alias or the id). */
  name: string;
  /** The canonical id. */
  model: string;
  status: Exclude<Lifecycle, 'active'>;
  retires: string;
  /** Where it is named: `class standard`, `workflow research models.plan`. */
  usedBy: string[];
  successor?: string;
}

/**
 * The models routing classes and workflows name that are retired or retiring at `now`. A
 * workflow step naming a class is covered by the class; one naming a model is checked itself.
 */
export function endOfLife(
  input: {
    classes: Record<string, string[]>;
    workflows?: { id: string; models: Record<string, string> }[];
  },
  prices: PriceTable,
  now: number,
): EndOfLife[] {
  const found = new Map<string, EndOfLife>();
  const check = (name: string, where: string) => {
    const entry = prices.lookup(name, now);
    if (!entry?.retires) return;
    const status = lifecycleOf(entry, now);
    if (status === 'active') return;
    const key = `${name}\0${entry.model}`;
    const hit = found.get(key) ?? {
      name,
      model: entry.model,
      status,
      retires: entry.retires,
      usedBy: [],
      successor: successorOf(entry, prices, now),
    };
    if (!hit.usedBy.includes(where)) hit.usedBy.push(where);
    found.set(key, hit);
  };
  for (const [cls, models] of Object.entries(input.classes)) {
    for (const m of models) check(m, `class ${cls}`);
  }
  for (const w of input.workflows ?? []) {
    for (const [step, wanted] of Object.entries(w.models)) {
      if (input.classes[wanted]) continue;
      check(wanted, `workflow ${w.id} models.${step}`);
    }
  }
  return [...found.values()].sort(
    (a, b) => a.retires.localeCompare(b.retires) || a.name.localeCompare(b.name),
  );
}

/** `claude-sonnet-4-5 retired 2026-11-30 (class standard): move to claude-sonnet-5-5` */
export function endOfLifeLine(e: EndOfLife): string {
  const verb = e.status === 'retired' ? 'retired' : 'retires';
  const move = e.successor ? `: move to ${e.successor}` : '';
  return `${e.name} ${verb} ${e.retires} (${e.usedBy.join(', ')})${move}`;
}
